/*
 * Unit tests for audit: one case per rule, each a config parsed with
 * conf_parse_text in its own folder (spool 0700, passwd file 0600) beside
 * certificates made here with OpenSSL (root -> intermediate -> leaf, and
 * broken variants). Each case expects exactly its one finding id (or none),
 * so a rule that fires where it should not fails too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "diag/audit.h"
#include "explain/finding.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define DAY 86400L

static char test_dir[64]; /* the certificates; one sub-folder per case */

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer/ikey (self-signed when NULL),
 * valid from nb to na seconds relative to now. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *ikey, long nb,
    long na, int ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), nb);
	X509_gmtime_adj(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
	add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(
		    x, issuer != NULL ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	add_ext(x, issuer != NULL ? issuer : x, NID_subject_key_identifier, "hash");
	if (issuer != NULL)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (san != NULL)
		add_ext(x, issuer != NULL ? issuer : x, NID_subject_alt_name, san);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
write_pem(const char *name, X509 *a, X509 *b, EVP_PKEY *key, mode_t mode)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", test_dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	if (a != NULL)
		assert_int_equal(PEM_write_X509(fp, a), 1);
	if (b != NULL)
		assert_int_equal(PEM_write_X509(fp, b), 1);
	if (key != NULL)
		assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static int
setup(void **state)
{
	EVP_PKEY *rootk = EVP_EC_gen("P-256"), *interk = EVP_EC_gen("P-256");
	EVP_PKEY *leafk = EVP_EC_gen("P-256"), *wrongk = EVP_EC_gen("P-256");
	X509 *root, *inter, *oldinter, *leaf, *x;
	const char *san = "DNS:mail.example.test";
	char path[256];

	snprintf(test_dir, sizeof(test_dir), "/tmp/test_audit.XXXXXX");
	if (mkdtemp(test_dir) == NULL)
		return -1;
	root = make_cert(rootk, "test root", NULL, NULL, NULL, -DAY, 365 * DAY, 1);
	inter = make_cert(interk, "test intermediate", NULL, root, rootk, -DAY, 365 * DAY, 1);
	oldinter = make_cert(interk, "test intermediate", NULL, root, rootk, -90 * DAY, -DAY, 1);
	leaf = make_cert(leafk, "mail.example.test", san, inter, interk, -DAY, 90 * DAY, 0);

	write_pem("root.pem", root, NULL, NULL, 0644);
	write_pem("chain.pem", leaf, inter, NULL, 0644);
	write_pem("leaf.key", NULL, NULL, leafk, 0600);
	write_pem("open.key", NULL, NULL, leafk, 0644);
	write_pem("wrong.key", NULL, NULL, wrongk, 0600);
	write_pem("leafonly.pem", leaf, NULL, NULL, 0644);
	write_pem("oldinter.pem", leaf, oldinter, NULL, 0644);
	x = make_cert(leafk, "mail.example.test", san, inter, interk, -90 * DAY, -DAY, 0);
	write_pem("expired.pem", x, inter, NULL, 0644);
	X509_free(x);
	x = make_cert(leafk, "mail.example.test", san, inter, interk, -80 * DAY, 10 * DAY, 0);
	write_pem("expiring.pem", x, inter, NULL, 0644);
	X509_free(x);
	x = make_cert(leafk, "mail.example.test", san, inter, interk, 2 * DAY, 90 * DAY, 0);
	write_pem("future.pem", x, inter, NULL, 0644);
	X509_free(x);
	x = make_cert(leafk, "mail.example.test", san, NULL, NULL, -DAY, 90 * DAY, 0);
	write_pem("self.pem", x, NULL, NULL, 0644);
	X509_free(x);
	x = make_cert(leafk, "other.example.test", "DNS:other.example.test", inter, interk, -DAY,
	    90 * DAY, 0);
	write_pem("other.pem", x, inter, NULL, 0644);
	X509_free(x);
	snprintf(path, sizeof(path), "%s/garbage.pem", test_dir);
	assert_int_equal(fs_write_atomic(path, "not a certificate\n", 18, 0600), 0);

	X509_free(root);
	X509_free(inter);
	X509_free(oldinter);
	X509_free(leaf);
	EVP_PKEY_free(rootk);
	EVP_PKEY_free(interk);
	EVP_PKEY_free(leafk);
	EVP_PKEY_free(wrongk);
	return 0;
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	return nftw(test_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static const char listen_ok[] = "[listen submission]\naddress = 127.0.0.1:587\ntls = starttls\n";
static const char listen_pub[] = "[listen submission]\naddress = *:587\ntls = starttls\n";
static const char tls_ok[] = "cert = ../chain.pem\nkey = ../leaf.key\n";

enum prep {
	PREP_NONE,
	PREP_USERS_0640,
	PREP_SPOOL_0755,
	PREP_SPOOL_MISSING, /* parent writable: can be created */
	PREP_SPOOL_OTHER_OWNER, /* root only */
	PREP_LOG_0644,
	PREP_LOG_0600,
	PREP_JWKS_0666,
	PREP_JWKS_0644,
	PREP_ADMIN_TOKEN, /* admin.token, 0600 */
};

struct audit_case {
	const char *name;
	const char *listen; /* NULL: listen_ok */
	const char *tls; /* [tls] lines; NULL: tls_ok */
	const char *more; /* appended sections */
	const char *spool; /* NULL: "spool" */
	const char *log; /* NULL: "stderr" */
	int no_domains; /* no [domains] local */
	enum prep prep;
	const char *mech0; /* replaces the first of "PLAIN LOGIN" after parsing */
	const char *id; /* the only id expected; NULL: no finding */
	enum finding_severity sev;
};

static const struct audit_case cases[] = {
    {"clean", NULL, NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"clean public", listen_pub, NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    /* [tls] ciphers */
    {"ciphers aead ecdhe", NULL, "cert = ../chain.pem\nkey = ../leaf.key\nciphers = ECDHE+AESGCM\n",
        NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"ciphers rsa kx cbc", NULL, "cert = ../chain.pem\nkey = ../leaf.key\nciphers = AES128-SHA\n",
        NULL, NULL, NULL, 0, PREP_NONE, NULL, "tls-ciphers-weak", FINDING_WARNING},
    {"ciphers ecdhe cbc", NULL,
        "cert = ../chain.pem\nkey = ../leaf.key\nciphers = ECDHE-ECDSA-AES128-SHA\n", NULL, NULL,
        NULL, 0, PREP_NONE, NULL, "tls-ciphers-weak", FINDING_WARNING},
    {"ciphers rsa kx gcm", NULL,
        "cert = ../chain.pem\nkey = ../leaf.key\nciphers = AES256-GCM-SHA384\n", NULL, NULL, NULL,
        0, PREP_NONE, NULL, "tls-ciphers-weak", FINDING_WARNING},
    {"ciphers anonymous", NULL,
        "cert = ../chain.pem\nkey = ../leaf.key\nciphers = ADH-AES128-GCM-SHA256:@SECLEVEL=0\n",
        NULL, NULL, NULL, 0, PREP_NONE, NULL, "tls-ciphers-insecure", FINDING_ERROR},
    {"ciphers null", NULL,
        "cert = ../chain.pem\nkey = ../leaf.key\nciphers = ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0\n",
        NULL, NULL, NULL, 0, PREP_NONE, NULL, "tls-ciphers-insecure", FINDING_ERROR},
    {"ciphers invalid", NULL, "cert = ../chain.pem\nkey = ../leaf.key\nciphers = NOSUCHCIPHER\n",
        NULL, NULL, NULL, 0, PREP_NONE, NULL, "tls-ciphers-invalid", FINDING_ERROR},
    {"ciphers unused with tls 1.3", NULL,
        "cert = ../chain.pem\nkey = ../leaf.key\nmin_version = 1.3\nciphers = AES128-SHA\n", NULL,
        NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    /* listeners and relay */
    {"no tls auth required",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = none\nauth = required\n", NULL, NULL,
        NULL, NULL, 0, PREP_NONE, NULL, "listen-auth-without-tls", FINDING_ERROR},
    {"no tls auth required scram",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = none\nauth = required\n", NULL, NULL,
        NULL, NULL, 0, PREP_NONE, "SCRAM-SHA-256", "listen-auth-without-tls", FINDING_WARNING},
    {"no tls auth required scram-plus only",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = none\nauth = required\n", NULL, NULL,
        NULL, NULL, 0, PREP_NONE, "SCRAM-SHA-256-PLUS", "listen-auth-without-tls", FINDING_ERROR},
    {"no tls auth optional",
        "[listen mx]\naddress = 127.0.0.1:25\ntls = none\nauth = optional\nrelay = local\n", NULL,
        NULL, NULL, NULL, 0, PREP_NONE, NULL, "listen-auth-without-tls", FINDING_WARNING},
    {"relay local no domains",
        "[listen mx]\naddress = 127.0.0.1:25\ntls = starttls\nauth = off\nrelay = local\n", NULL,
        NULL, NULL, NULL, 1, PREP_NONE, NULL, "relay-local-no-domains", FINDING_WARNING},
    {"relay local auth required no domains",
        "[listen s]\naddress = 127.0.0.1:25\ntls = starttls\nauth = required\nrelay = local\n",
        NULL, NULL, NULL, NULL, 1, PREP_NONE, NULL, NULL, 0},
    {"mx on all addresses",
        "[listen mx]\naddress = *:25\ntls = starttls\nauth = off\nrelay = local\n", NULL, NULL,
        NULL, NULL, 0, PREP_NONE, NULL, "relay-unauthenticated-mx", FINDING_INFO},
    {"mx on loopback",
        "[listen mx]\naddress = [::1]:25\ntls = starttls\nauth = off\nrelay = local\n", NULL, NULL,
        NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"mx on a v6 address",
        "[listen mx]\naddress = [2001:db8::1]:25\ntls = starttls\nauth = off\nrelay = local\n",
        NULL, "[limits]\nallow = 127.0.0.0/8 ::1 2001:db8::/64\n", NULL, NULL, 0, PREP_NONE, NULL,
        "relay-unauthenticated-mx", FINDING_INFO},
    /* PROXY protocol: proxy_from is the balancers, not the world */
    {"proxy_from everyone",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = starttls\nproxy_protocol = yes\n"
        "proxy_from = 10.0.0.10 0.0.0.0/0\n",
        NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, "listen-proxy-from-wide", FINDING_WARNING},
    {"proxy_from v6 /32",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = starttls\nproxy_protocol = yes\n"
        "proxy_from = 2001:db8::/32\n",
        NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, "listen-proxy-from-wide", FINDING_WARNING},
    {"proxy_from balancers",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = starttls\nproxy_protocol = yes\n"
        "proxy_from = 10.0.0.10 10.1.0.0/16 2001:db8:1::/48\n",
        NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"proxy_from unused",
        "[listen submission]\naddress = 127.0.0.1:587\ntls = starttls\n"
        "proxy_from = 0.0.0.0/0\n",
        NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    /* bans must not hit the host itself */
    {"own address bannable", "[listen submission]\naddress = 192.0.2.25:587\ntls = starttls\n",
        NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, "limits-own-address-bannable", FINDING_WARNING},
    {"own address allowed", "[listen submission]\naddress = 192.0.2.25:587\ntls = starttls\n", NULL,
        "[limits]\nallow = 127.0.0.0/8 ::1 192.0.2.25\n", NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"loopback bannable", NULL, NULL, "[limits]\nallow =\n", NULL, NULL, 0, PREP_NONE, NULL,
        "limits-loopback-bannable", FINDING_WARNING},
    {"loopback v4 only", NULL, NULL, "[limits]\nallow = 127.0.0.1\n", NULL, NULL, 0, PREP_NONE,
        NULL, "limits-loopback-bannable", FINDING_WARNING},
    {"cram-md5", NULL, NULL, NULL, NULL, NULL, 0, PREP_NONE, "CRAM-MD5", "auth-cram-md5-enabled",
        FINDING_WARNING},
    /* limits, on a reachable listener only */
    {"timeout_command public", listen_pub, NULL, "[limits]\ntimeout_command = 20m\n", NULL, NULL, 0,
        PREP_NONE, NULL, "limits-timeout-too-long", FINDING_WARNING},
    {"timeout_data public", listen_pub, NULL, "[limits]\ntimeout_data = 2h\n", NULL, NULL, 0,
        PREP_NONE, NULL, "limits-timeout-too-long", FINDING_WARNING},
    {"timeout_command loopback", NULL, NULL, "[limits]\ntimeout_command = 20m\n", NULL, NULL, 0,
        PREP_NONE, NULL, NULL, 0},
    {"timeout_command 10m public", listen_pub, NULL, "[limits]\ntimeout_command = 10m\n", NULL,
        NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"message_size public", listen_pub, NULL, "[limits]\nmessage_size = 200M\n", NULL, NULL, 0,
        PREP_NONE, NULL, "limits-message-size-too-large", FINDING_WARNING},
    {"message_size 100M public", listen_pub, NULL, "[limits]\nmessage_size = 100M\n", NULL, NULL, 0,
        PREP_NONE, NULL, NULL, 0},
    {"recipients public", listen_pub, NULL, "[limits]\nrecipients = 5000\n", NULL, NULL, 0,
        PREP_NONE, NULL, "limits-recipients-too-many", FINDING_WARNING},
    {"errors public", listen_pub, NULL, "[limits]\nerrors = 100\n", NULL, NULL, 0, PREP_NONE, NULL,
        "limits-errors-too-many", FINDING_WARNING},
    /* certificates */
    {"cert expired", NULL, "cert = ../expired.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-expired", FINDING_ERROR},
    {"intermediate expired", NULL, "cert = ../oldinter.pem\nkey = ../leaf.key\n", NULL, NULL, NULL,
        0, PREP_NONE, NULL, "tls-cert-expired", FINDING_ERROR},
    {"cert expiring", NULL, "cert = ../expiring.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-expiring-soon", FINDING_WARNING},
    {"cert not yet valid", NULL, "cert = ../future.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-not-yet-valid", FINDING_ERROR},
    {"key mismatch", NULL, "cert = ../chain.pem\nkey = ../wrong.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-key-mismatch", FINDING_ERROR},
    {"chain incomplete", NULL, "cert = ../leafonly.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-chain-incomplete", FINDING_ERROR},
    {"self-signed", NULL, "cert = ../self.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0, PREP_NONE,
        NULL, "tls-cert-self-signed", FINDING_WARNING},
    {"name mismatch", NULL, "cert = ../other.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-name-mismatch", FINDING_WARNING},
    {"name matches a later cert", NULL,
        "cert = ../other.pem\nkey = ../leaf.key\ncert = ../chain.pem\nkey = ../leaf.key\n", NULL,
        NULL, NULL, 0, PREP_NONE, NULL, NULL, 0},
    {"key readable by others", NULL, "cert = ../chain.pem\nkey = ../open.key\n", NULL, NULL, NULL,
        0, PREP_NONE, NULL, "tls-key-readable-by-others", FINDING_WARNING},
    {"cert missing", NULL, "cert = ../nonexistent.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-unreadable", FINDING_ERROR},
    {"cert garbage", NULL, "cert = ../garbage.pem\nkey = ../leaf.key\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-unreadable", FINDING_ERROR},
    {"key garbage", NULL, "cert = ../chain.pem\nkey = ../garbage.pem\n", NULL, NULL, NULL, 0,
        PREP_NONE, NULL, "tls-cert-unreadable", FINDING_ERROR},
    {"certs unused without tls listeners",
        "[listen mx]\naddress = 127.0.0.1:25\ntls = none\nauth = off\nrelay = local\n",
        "cert = ../expired.pem\nkey = ../wrong.key\n", NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL,
        0},
    /* credential files */
    {"passwd file 0640", NULL, NULL, NULL, NULL, NULL, 0, PREP_USERS_0640, NULL,
        "auth-passwd-file-permissions", FINDING_ERROR},
    {"jwks world-writable", NULL, NULL,
        "[oauth]\njwks = jwks.json\nissuer = https://idp.test\naudience = smtp\n", NULL, NULL, 0,
        PREP_JWKS_0666, NULL, "oauth-jwks-file-writable", FINDING_ERROR},
    {"jwks 0644", NULL, NULL,
        "[oauth]\njwks = jwks.json\nissuer = https://idp.test\naudience = smtp\n", NULL, NULL, 0,
        PREP_JWKS_0644, NULL, NULL, 0},
    /* spool and log */
    {"spool 0755", NULL, NULL, NULL, NULL, NULL, 0, PREP_SPOOL_0755, NULL, "spool-permissions-open",
        FINDING_WARNING},
    {"spool missing, creatable", NULL, NULL, NULL, NULL, NULL, 0, PREP_SPOOL_MISSING, NULL, NULL,
        0},
    {"spool missing, parent missing", NULL, NULL, NULL, "/proc/nonexistent/spool", NULL, 0,
        PREP_NONE, NULL, "spool-not-writable", FINDING_WARNING},
    {"spool is a file", NULL, NULL, NULL, "users", NULL, 0, PREP_NONE, NULL, "spool-not-writable",
        FINDING_WARNING},
    {"spool other owner", NULL, NULL, NULL, NULL, NULL, 0, PREP_SPOOL_OTHER_OWNER, NULL,
        "spool-owner-mismatch", FINDING_WARNING},
    {"log 0644", NULL, NULL, NULL, NULL, "smtpgate.log", 0, PREP_LOG_0644, NULL,
        "log-file-world-readable", FINDING_INFO},
    {"log 0600", NULL, NULL, NULL, NULL, "smtpgate.log", 0, PREP_LOG_0600, NULL, NULL, 0},
    {"log not creatable", NULL, NULL, NULL, NULL, "/proc/nonexistent/smtpgate.log", 0, PREP_NONE,
        NULL, "log-file-not-writable", FINDING_WARNING},
    /* [admin] */
    {"admin without token", NULL, NULL, "[admin]\n", NULL, NULL, 0, PREP_NONE, NULL,
        "admin-unauthenticated", FINDING_WARNING},
    {"admin v6 loopback without token", NULL, NULL, "[admin]\naddress = [::1]:8025\n", NULL, NULL,
        0, PREP_NONE, NULL, "admin-unauthenticated", FINDING_WARNING},
    {"admin public without token", NULL, NULL, "[admin]\naddress = *:8025\n", NULL, NULL, 0,
        PREP_NONE, NULL, "admin-unauthenticated", FINDING_ERROR},
    {"admin with token", NULL, NULL, "[admin]\ntoken_file = admin.token\n", NULL, NULL, 0,
        PREP_ADMIN_TOKEN, NULL, NULL, 0},
    {"admin public with token", NULL, NULL,
        "[admin]\naddress = 192.0.2.1:8025\ntoken_file = admin.token\nauth = all\n", NULL, NULL, 0,
        PREP_ADMIN_TOKEN, NULL, NULL, 0},
};

static void
make_file(const char *dir, const char *name, mode_t mode)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(fs_write_atomic(path, "{\"keys\": []}\n", 13, mode), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Prepares the case's folder; false when the case cannot run here. */
static int
prepare(const struct audit_case *t, const char *dir)
{
	char path[512];

	assert_int_equal(mkdir(dir, 0700), 0);
	make_file(dir, "users", t->prep == PREP_USERS_0640 ? 0640 : 0600);
	snprintf(path, sizeof(path), "%s/spool", dir);
	if (t->prep != PREP_SPOOL_MISSING) {
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_equal(chmod(path, t->prep == PREP_SPOOL_0755 ? 0755 : 0700), 0);
	}
	if (t->prep == PREP_SPOOL_OTHER_OWNER) {
		if (geteuid() != 0)
			return 0;
		assert_int_equal(chown(path, 1, 1), 0);
	}
	if (t->prep == PREP_LOG_0644 || t->prep == PREP_LOG_0600)
		make_file(dir, "smtpgate.log", t->prep == PREP_LOG_0644 ? 0644 : 0600);
	if (t->prep == PREP_JWKS_0666 || t->prep == PREP_JWKS_0644)
		make_file(dir, "jwks.json", t->prep == PREP_JWKS_0666 ? 0666 : 0644);
	if (t->prep == PREP_ADMIN_TOKEN) {
		snprintf(path, sizeof(path), "%s/admin.token", dir);
		assert_int_equal(
		    fs_write_atomic(path, "0123456789abcdef0123456789abcdef\n", 33, 0600), 0);
	}
	return 1;
}

static struct conf *
parse_case(const struct audit_case *t, const char *dir)
{
	char file[512], err[1024] = "", *text = NULL;
	struct conf *c;

	assert_true(
	    asprintf(&text,
	        "[server]\nhostname = mail.example.test\nspool = %s\nlog = %s\nuser = nobody\n%s"
	        "[tls]\n%s[auth]\nbackend = file:users\nmechanisms = PLAIN LOGIN\n%s%s",
	        t->spool ? t->spool : "spool", t->log ? t->log : "stderr",
	        t->listen ? t->listen : listen_ok, t->tls ? t->tls : tls_ok,
	        t->no_domains ? "" : "[domains]\nlocal = example.test\n",
	        t->more ? t->more : "") != -1);
	snprintf(file, sizeof(file), "%s/smtpgate.conf", dir);
	c = conf_parse_text(file, text, err, sizeof(err));
	free(text);
	if (c == NULL)
		fail_msg("%s: config: %s", t->name, err);
	if (t->mech0 != NULL) {
		free(c->mechanisms[0]);
		c->mechanisms[0] = xstrdup(t->mech0);
	}
	return c;
}

static void
test_rules(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct audit_case *t = &cases[i];
		char dir[256];
		struct findings f;
		struct conf *c;

		snprintf(dir, sizeof(dir), "%s/case%zu", test_dir, i);
		if (!prepare(t, dir)) {
			print_message("skipped (needs root): %s\n", t->name);
			continue;
		}
		c = parse_case(t, dir);
		findings_init(&f);
		audit_conf(c, time(NULL), &f);
		if (t->id == NULL && f.n > 0)
			fail_msg("%s: unexpected finding %s (%s)", t->name, f.v[0].kb->id,
			    f.v[0].evidence ? f.v[0].evidence : "");
		for (size_t j = 0; j < f.n; j++) {
			if (t->id != NULL && strcmp(f.v[j].kb->id, t->id) != 0)
				fail_msg("%s: expected %s, also got %s (%s)", t->name, t->id,
				    f.v[j].kb->id, f.v[j].evidence ? f.v[j].evidence : "");
			if (f.v[j].severity != t->sev)
				fail_msg("%s: %s has severity %s", t->name, f.v[j].kb->id,
				    finding_severity_name(f.v[j].severity));
			/* evidence says what was seen, never empty */
			assert_non_null(f.v[j].evidence);
			assert_true(f.v[j].evidence[0] != '\0');
		}
		if (t->id != NULL && f.n == 0)
			fail_msg("%s: expected %s, got no finding", t->name, t->id);
		assert_int_equal(findings_has_error(&f), t->id != NULL && t->sev == FINDING_ERROR);
		findings_free(&f);
		conf_free(c);
	}
}

/* The findings' evidence names the weak suites and why. */
static void
test_cipher_evidence(void **state)
{
	const struct audit_case t = {"evidence", NULL,
	    "cert = ../chain.pem\nkey = ../leaf.key\nciphers = AES128-SHA:ECDHE+AESGCM\n", NULL,
	    NULL, NULL, 0, PREP_NONE, NULL, NULL, 0};
	char dir[256];
	struct findings f;
	struct conf *c;

	snprintf(dir, sizeof(dir), "%s/evidence", test_dir);
	assert_true(prepare(&t, dir));
	c = parse_case(&t, dir);
	findings_init(&f);
	audit_conf(c, time(NULL), &f);
	assert_int_equal(f.n, 1);
	assert_non_null(strstr(f.v[0].evidence, "AES128-SHA (RSA key exchange, CBC, not AEAD)"));
	assert_null(strstr(f.v[0].evidence, "AES128-GCM-SHA256"));
	findings_free(&f);
	conf_free(c);
}

/* Expiry is judged at the time given: the good chain expires in 90 days. */
static void
test_expiry_uses_now(void **state)
{
	const struct audit_case t = {
	    "now", NULL, NULL, NULL, NULL, NULL, 0, PREP_NONE, NULL, NULL, 0};
	char dir[256];
	struct findings f;
	struct conf *c;

	snprintf(dir, sizeof(dir), "%s/now", test_dir);
	assert_true(prepare(&t, dir));
	c = parse_case(&t, dir);
	findings_init(&f);
	audit_conf(c, time(NULL) + 70 * DAY, &f);
	assert_true(findings_has(&f, "tls-cert-expiring-soon"));
	assert_false(findings_has_error(&f));
	findings_free(&f);
	audit_conf(c, time(NULL) + 100 * DAY, &f);
	assert_true(findings_has(&f, "tls-cert-expired"));
	findings_free(&f);
	conf_free(c);
}

/* Every audit id: kebab-case, unique across all tables, with a cause and a
 * fix, and listed in doc/findings.md under "## audit". */
static void
test_kb_rows(void **state)
{
	const struct finding_kb *tables[] = {finding_kb_probe, finding_kb_dns, finding_kb_audit};
	size_t len;
	char *doc = fs_read_file(SG_SOURCE_DIR "/doc/findings.md", 1 << 20, &len), *audit;

	assert_non_null(doc);
	audit = strstr(doc, "\n## audit\n");
	assert_non_null(audit);
	for (const struct finding_kb *k = finding_kb_audit; k->id != NULL; k++) {
		char quoted[128];
		size_t seen = 0;

		assert_true(
		    strspn(k->id, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(k->id));
		assert_true(k->cause != NULL && strlen(k->cause) > 20);
		assert_true(k->fix != NULL && strlen(k->fix) > 10);
		for (size_t t = 0; t < 3; t++) {
			for (const struct finding_kb *o = tables[t]; o->id != NULL; o++)
				seen += strcmp(o->id, k->id) == 0;
		}
		if (seen != 1)
			fail_msg("finding id %s is defined %zu times", k->id, seen);
		snprintf(quoted, sizeof(quoted), "`%s`", k->id);
		if (strstr(audit, quoted) == NULL)
			fail_msg("%s is not in doc/findings.md ## audit", k->id);
	}
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_cipher_evidence),
	    cmocka_unit_test(test_expiry_uses_now),
	    cmocka_unit_test(test_kb_rows),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

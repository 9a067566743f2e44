/*
 * audit_chain: finds the issuer of a certificate that its cert file lacks.
 *
 * Public CAs never sign server certificates with a root key (CA/Browser
 * Forum Baseline Requirements 6.1.7) and name their intermediate in the
 * certificate (Authority Information Access, caIssuers), so such a leaf
 * alone in its file always misses an intermediate. A private CA (or the
 * demo's) often signs directly with its root, which clients are given on
 * their side: that chain is complete. Which of the two it is can only be
 * seen from the issuer's certificate, looked for where it usually is.
 * Read-only; bounded in files and bytes.
 */
#include "diag/audit_chain.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define AUDIT_CHAIN_FILES_MAX 256 /* PEM files looked at beside the cert */
#define AUDIT_CHAIN_FILE_SIZE_MAX (1024 * 1024)

static int
audit_chain_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static bool
audit_chain_is_pem_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot != NULL &&
	    (strcmp(dot, ".pem") == 0 || strcmp(dot, ".crt") == 0 || strcmp(dot, ".cer") == 0);
}

/* The first certificate of file path that issued leaf (new reference). */
static X509 *
audit_chain_issuer_in_file(const char *path, X509 *leaf)
{
	struct stat st;
	X509 *x, *found = NULL;
	FILE *fp;

	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > AUDIT_CHAIN_FILE_SIZE_MAX)
		return NULL;
	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	/* PEM_read_X509 passes over other blocks (keys) without decoding them */
	while (found == NULL &&
	    (x = PEM_read_X509(fp, NULL, audit_chain_no_passphrase_cb, NULL)) != NULL) {
		if (X509_cmp(x, leaf) != 0 && X509_check_issued(x, leaf) == X509_V_OK)
			found = x;
		else
			X509_free(x);
	}
	fclose(fp);
	ERR_clear_error();
	return found;
}

/* The issuer of leaf in a PEM file of dir; its path in where. */
static X509 *
audit_chain_issuer_in_dir(const char *dir, X509 *leaf, char *where, size_t wherelen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	X509 *found = NULL;
	int files = 0;

	if (d == NULL)
		return NULL;
	while (found == NULL && files < AUDIT_CHAIN_FILES_MAX && (e = readdir(d)) != NULL) {
		char path[4096];

		if (!audit_chain_is_pem_name(e->d_name))
			continue;
		files++;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		found = audit_chain_issuer_in_file(path, leaf);
		if (found != NULL)
			snprintf(where, wherelen, "%s", path);
	}
	closedir(d);
	return found;
}

/* The issuer of leaf among the CAs OpenSSL trusts by default. */
static X509 *
audit_chain_issuer_in_store(X509 *leaf, char *where, size_t wherelen)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *found = NULL;

	if (st != NULL && ctx != NULL && X509_STORE_set_default_paths(st) == 1 &&
	    X509_STORE_CTX_init(ctx, st, leaf, NULL) == 1 &&
	    X509_STORE_CTX_get1_issuer(&found, ctx, leaf) != 1)
		found = NULL;
	if (found != NULL)
		snprintf(where, wherelen, "%s (this machine's trusted CAs)",
		    X509_get_default_cert_dir());
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return found;
}

/* The leaf's Authority Information Access caIssuers URL, if any. */
static bool
audit_chain_ca_issuers_url(X509 *leaf, char *where, size_t wherelen)
{
	AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(leaf, NID_info_access, NULL, NULL);
	bool found = false;

	for (int i = 0; aia != NULL && i < sk_ACCESS_DESCRIPTION_num(aia) && !found; i++) {
		const ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);

		if (OBJ_obj2nid(ad->method) != NID_ad_ca_issuers || ad->location->type != GEN_URI)
			continue;
		snprintf(where, wherelen, "%.*s",
		    ASN1_STRING_length(ad->location->d.uniformResourceIdentifier),
		    (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier));
		found = true;
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	return found;
}

enum audit_chain_issuer
audit_chain_find_issuer(const char *cert_path, X509 *leaf, char *where, size_t wherelen)
{
	char dir[4096];
	const char *slash = strrchr(cert_path, '/');
	X509 *issuer;
	enum audit_chain_issuer r;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    slash == cert_path ? 1 : (int)(slash - cert_path), cert_path);
	issuer = audit_chain_issuer_in_dir(dir, leaf, where, wherelen);
	if (issuer == NULL)
		issuer = audit_chain_issuer_in_store(leaf, where, wherelen);
	if (issuer != NULL) {
		r = X509_self_signed(issuer, 0) == 1 ? AUDIT_CHAIN_ISSUER_ROOT
		                                     : AUDIT_CHAIN_ISSUER_INTERMEDIATE;
		X509_free(issuer);
		return r;
	}
	if (audit_chain_ca_issuers_url(leaf, where, wherelen))
		return AUDIT_CHAIN_ISSUER_PUBLISHED;
	snprintf(where, wherelen, "%s", dir);
	return AUDIT_CHAIN_ISSUER_UNKNOWN;
}

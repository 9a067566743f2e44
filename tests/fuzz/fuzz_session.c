/*
 * libFuzzer target: the whole SMTP session (server/session.c) in-process,
 * with what `smtpgate serve` sets up around it: a configuration snapshot
 * and TLS contexts, the authdb (a passwd file), the OAuth verifier (a JWKS
 * file), the queue (a spool on tmpfs), the limiter, obs and sendquota, and
 * one worker whose loop the harness runs itself.
 *
 * Input: the first byte chooses the listener and the size of each write;
 * the rest is what a client sends, pipelined as it likes:
 *   bits 0-1  0, 3: [listen plain] (tls = none, auth = optional): SCRAM,
 *                   CRAM-MD5, unauthenticated mail to example.test
 *             1: [listen smtps] (implicit TLS, auth = optional): the
 *                harness is the TLS client (OpenSSL over the socketpair),
 *                so PLAIN, LOGIN, XOAUTH2, OAUTHBEARER and SCRAM-*-PLUS work
 *             2: [listen submission] (STARTTLS, auth = required), plaintext
 *                only: what comes after STARTTLS is a broken handshake
 *   bits 2-4  bytes per write: 1, 7, 64, 512, 1460, 4096, 16384, all
 * The user alice@example.test has the password "fuzz-password" (SCRAM-SHA-256
 * with scram1=, and a {CRAM-MD5} line); tests/fuzz/session_corpus.py writes
 * the seeds and signs their tokens with the key of FUZZ_SESSION_JWKS.
 *
 * Each input is one connection over a socketpair; the server's send buffer
 * is small.
 * The client writes without reading replies until its socket is full (so
 * the server's replies pile up: back-pressure), reads only then, and goes
 * on; after the last byte it reads until the session is idle (no request
 * in flight, nothing new for a few loop passes), closes, and runs the loop
 * until the session is freed. Nothing sleeps: the loop blocks only while a
 * request is in flight to the authdb, OAuth or queue threads.
 *
 * With FUZZ_SESSION_TRACE set in the environment the replies are copied to
 * stderr (to see what a seed reaches: ./fuzz_session SEED).
 *
 * Oracles besides ASan/UBSan and any abort() in the server: every byte the
 * server sends in plaintext SMTP is part of a well-formed reply line
 * ("NNN " or "NNN-", text, CRLF); a session that stops reading while the
 * client has more to send must have a reason (a request in flight, or
 * output for the client to read); an idle session holds no input it could
 * act on (session_has_stalled_input, a test hook of session.c); a session
 * ends once its client closes.
 *
 * Link seams (-Wl,--wrap, see CMakeLists.txt): the session's async
 * requests (authc_verify_plain, authc_sasl, authc_verify_token,
 * queue_msg_commit) are counted while in flight; the authc ones are
 * answered by an authdb, the exchanges of server/auth_sasl.h and an OAuth
 * verifier of the harness's own, as the auth process would answer them
 * (through the loop's mailbox, never inline), and every committed
 * message is rolled back so the spool stays empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "auth/authdb.h"
#include "auth/oauth.h"
#include "auth/pwscheme.h"
#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/idmap.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/loop.h"
#include "net/tls.h"
#include "policy/limiter.h"
#include "queue/queue.h"
#include "lib/mailbox.h"
#include "server/auth_sasl.h"
#include "server/authc.h"
#include "server/obs.h"
#include "server/sendquota.h"
#include "server/server.h"
#include "server/session.h"

#define FUZZ_SESSION_USER "alice@example.test"
#define FUZZ_SESSION_PASSWORD "fuzz-password"
#define FUZZ_SESSION_ITER 64 /* cheap PBKDF2: PLAIN costs little per input */
/* Ed25519 public key "fuzz1" (session_corpus.py derives the private key) */
#define FUZZ_SESSION_JWKS                                                                          \
	"{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"fuzz1\", \"x\": "         \
	"\"" FUZZ_SESSION_JWK_X "\"}]}\n"
#define FUZZ_SESSION_JWK_X "QlPel1Jn8dvPYsoNLOAMTVHbZM36yobQKCCbPZK_rsA"
#define FUZZ_SESSION_SERVER_SNDBUF 8192 /* the kernel doubles it */
#define FUZZ_SESSION_CLIENT_SNDBUF 65536
#define FUZZ_SESSION_ROUNDS 200000 /* loop passes per input, all phases */
#define FUZZ_SESSION_STUCK 20000 /* passes with nothing happening: a hang */
#define FUZZ_SESSION_QUIET 4 /* passes with nothing happening: idle */

enum fuzz_session_listener {
	FUZZ_SESSION_PLAIN,
	FUZZ_SESSION_SMTPS,
	FUZZ_SESSION_SUBMISSION,
};

/* The one server, made by LLVMFuzzerInitialize. */
static struct server fuzz_srv;
static struct worker fuzz_worker;
static struct worker *fuzz_workers[1] = {&fuzz_worker};
static SSL_CTX *fuzz_client_ctx;
static char fuzz_dir[64];
static unsigned fuzz_inflight; /* async requests of the session not yet answered */
static bool fuzz_trace; /* FUZZ_SESSION_TRACE set: the replies go to stderr */

/* One client connection (an input). */
struct fuzz_session_client {
	int fd; /* the client's end */
	int sfd; /* the server's end, owned by the session */
	SSL *ssl; /* NULL in plaintext */
	bool eof; /* the server closed, or a write failed */
	bool check; /* the bytes read are plaintext SMTP replies */
	size_t pos; /* bytes into the current reply line */
	char head[9]; /* its first bytes */
	bool cr; /* the last byte was CR */
	unsigned rounds; /* loop passes so far */
};

/* --- link seams: async requests in flight -------------------------------- */

/* The credentials the seams check against, in place of the auth process. */
static struct authdb *fuzz_authdb;
static struct oauth *fuzz_oauth;
static struct auth_sasl *fuzz_sasl;

struct fuzz_session_call {
	union {
		authc_done_cb *done;
		authc_sasl_cb *sasl;
		authc_token_cb *token;
		queue_commit_cb *commit;
	} cb;
	void *ctx;
	/* authc_sasl: the answer waits in the mailbox */
	struct mailbox *mb;
	uint64_t session_id;
	struct auth_msg_answer *answer;
};

void __wrap_authc_verify_plain(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authc_done_cb *cb, void *ctx);
void __wrap_authc_sasl(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const struct auth_msg_req *q, authc_sasl_cb *cb, void *ctx);
void __wrap_authc_sasl_end(struct authc *a, struct mailbox *mb, uint64_t handle);
void __wrap_authc_verify_token(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *token, size_t tokenlen, authc_token_cb *cb,
    void *ctx);
void __real_queue_msg_commit(struct queue_msg *m, const struct queue_envelope *env,
    struct mailbox *mb, uint64_t session_id, queue_commit_cb *cb, void *ctx);
void __wrap_queue_msg_commit(struct queue_msg *m, const struct queue_envelope *env,
    struct mailbox *mb, uint64_t session_id, queue_commit_cb *cb, void *ctx);

/* Takes the call back (the answer has come). */
static struct fuzz_session_call
fuzz_session_call_take(void *arg)
{
	struct fuzz_session_call c = *(struct fuzz_session_call *)arg;

	free(arg);
	if (fuzz_inflight == 0)
		abort(); /* an answer nobody asked for */
	fuzz_inflight--;
	return c;
}

static struct fuzz_session_call *
fuzz_session_call_new(void *ctx)
{
	struct fuzz_session_call *c = xcalloc(1, sizeof(*c));

	c->ctx = ctx;
	fuzz_inflight++;
	return c;
}

static void
fuzz_session_done_cb(void *arg, uint64_t session_id, enum authdb_result result, const char *user)
{
	struct fuzz_session_call c = fuzz_session_call_take(arg);
	char *senders = result == AUTHDB_OK ? authdb_user_senders(fuzz_authdb, user) : NULL;

	c.cb.done(c.ctx, session_id, result, user, senders);
	free(senders);
}

void
__wrap_authc_verify_plain(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *password, size_t passlen, const char *client,
    authc_done_cb *cb, void *ctx)
{
	struct fuzz_session_call *c = fuzz_session_call_new(ctx);

	(void)a;
	c->cb.done = cb;
	authdb_verify_plain_from(fuzz_authdb, mb, session_id, user, userlen, password, passlen,
	    client, fuzz_session_done_cb, c);
}

/* On the session's loop, as authc delivers. */
static void
fuzz_session_sasl_deliver(void *arg)
{
	struct fuzz_session_call c = fuzz_session_call_take(arg);

	c.cb.sasl(c.ctx, c.session_id, c.answer);
	free(c.answer);
}

/* auth_sasl's answer (token: the call), inline or from the authdb. */
static void
fuzz_session_sasl_cb(void *ctx, uint64_t token, const struct auth_msg_answer *a)
{
	struct fuzz_session_call *c = (struct fuzz_session_call *)(uintptr_t)token;

	(void)ctx;
	c->answer = xmalloc(sizeof(*a));
	*c->answer = *a;
	mailbox_post(c->mb, fuzz_session_sasl_deliver, c);
}

void
__wrap_authc_sasl(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const struct auth_msg_req *q, authc_sasl_cb *cb, void *ctx)
{
	struct fuzz_session_call *c = fuzz_session_call_new(ctx);

	(void)a;
	c->cb.sasl = cb;
	c->mb = mb;
	c->session_id = session_id;
	if (q->type == AUTH_MSG_SASL_START)
		auth_sasl_start(fuzz_sasl, mb, 1, (uintptr_t)c, q, fuzz_session_sasl_cb, NULL);
	else
		auth_sasl_step(fuzz_sasl, 1, (uintptr_t)c, q, fuzz_session_sasl_cb, NULL);
}

void
__wrap_authc_sasl_end(struct authc *a, struct mailbox *mb, uint64_t handle)
{
	(void)a;
	(void)mb;
	auth_sasl_end(fuzz_sasl, 1, handle);
}

static void
fuzz_session_token_cb(void *arg, uint64_t session_id, enum oauth_result result, const char *reason)
{
	struct fuzz_session_call c = fuzz_session_call_take(arg);

	c.cb.token(c.ctx, session_id, result, reason, oauth_openid_configuration(fuzz_oauth), NULL);
}

void
__wrap_authc_verify_token(struct authc *a, struct mailbox *mb, uint64_t session_id,
    const char *user, size_t userlen, const char *token, size_t tokenlen, authc_token_cb *cb,
    void *ctx)
{
	struct fuzz_session_call *c = fuzz_session_call_new(ctx);

	(void)a;
	c->cb.token = cb;
	oauth_verify(
	    fuzz_oauth, mb, session_id, user, userlen, token, tokenlen, fuzz_session_token_cb, c);
}

static void
fuzz_session_commit_cb(void *arg, uint64_t session_id, const char *queue_id, int result)
{
	struct fuzz_session_call c = fuzz_session_call_take(arg);

	c.cb.commit(c.ctx, session_id, queue_id, result);
	/* the spool stays empty: rollback is a no-op if the session did it */
	if (result == 0)
		queue_rollback(fuzz_srv.queue, queue_id);
}

void
__wrap_queue_msg_commit(struct queue_msg *m, const struct queue_envelope *env, struct mailbox *mb,
    uint64_t session_id, queue_commit_cb *cb, void *ctx)
{
	struct fuzz_session_call *c = fuzz_session_call_new(ctx);

	c->cb.commit = cb;
	__real_queue_msg_commit(m, env, mb, session_id, fuzz_session_commit_cb, c);
}

/* --- one-time setup -------------------------------------------------------- */

static void
fuzz_session_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_session: %s: %s\n", what, detail != NULL ? detail : "");
	abort();
}

static void
fuzz_session_write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		fuzz_session_die("cannot write", path);
}

/* A self-signed P-256 certificate and its key: cert.pem, key.pem. */
static void
fuzz_session_make_cert(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	char path[128];
	FILE *f;

	if (pk == NULL || x == NULL)
		fuzz_session_die("cannot make a key", NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    nm, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz.example.test", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		fuzz_session_die("cannot sign the certificate", NULL);
	snprintf(path, sizeof(path), "%s/cert.pem", fuzz_dir);
	if ((f = fopen(path, "w")) == NULL || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
		fuzz_session_die("cannot write", path);
	snprintf(path, sizeof(path), "%s/key.pem", fuzz_dir);
	if ((f = fopen(path, "w")) == NULL ||
	    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
		fuzz_session_die("cannot write", path);
	X509_free(x);
	EVP_PKEY_free(pk);
}

/* "ITER,SALT,STOREDKEY,SERVERKEY" of the password for scheme s into out. */
static void
fuzz_session_scram_data(enum pwscheme s, struct buf *out)
{
	static const unsigned char salt[16] = "fuzz-salt-16byte";
	struct pwscheme_scram k;

	if (pwscheme_scram_derive(s, FUZZ_SESSION_PASSWORD, strlen(FUZZ_SESSION_PASSWORD), salt,
	        sizeof(salt), FUZZ_SESSION_ITER, &k, NULL) == -1 ||
	    pwscheme_scram_format(&k, out) == -1)
		fuzz_session_die("cannot derive SCRAM keys", NULL);
}

/* The passwd file: alice with SCRAM keys (both hashes) and a CRAM-MD5
 * line, and a locked user. */
static void
fuzz_session_make_users(void)
{
	struct buf b;
	char *text;

	buf_init(&b, 4096);
	if (buf_append_str(&b, FUZZ_SESSION_USER ":{SCRAM-SHA-256}") == -1)
		abort();
	fuzz_session_scram_data(PWSCHEME_SCRAM_SHA256, &b);
	if (buf_append_str(&b, "::::::scram1=") == -1)
		abort();
	fuzz_session_scram_data(PWSCHEME_SCRAM_SHA1, &b);
	if (buf_printf(&b, "\n%s:{CRAM-MD5}$k$", FUZZ_SESSION_USER) == -1)
		abort();
	for (const char *p = FUZZ_SESSION_PASSWORD; *p != '\0'; p++) {
		if (buf_printf(&b, "%02x", (unsigned char)*p) == -1)
			abort();
	}
	if (buf_append_str(&b, "\nlocked@example.test:{SCRAM-SHA-256}") == -1)
		abort();
	fuzz_session_scram_data(PWSCHEME_SCRAM_SHA256, &b);
	if (buf_append_str(&b, "::::::locked=yes\n") == -1)
		abort();
	text = buf_strdup(&b);
	fuzz_session_write_file("users", text);
	free(text);
	buf_free(&b);
}

static void
fuzz_session_make_conf(void)
{
	fuzz_session_write_file("smtpgate.conf",
	    "[server]\n"
	    "hostname = fuzz.example.test\n"
	    "spool = spool\n"
	    "threads = 1\n"
	    "[listen plain]\n"
	    "address = 127.0.0.1:10025\n"
	    "tls = none\n"
	    "auth = optional\n"
	    "relay = local\n"
	    "[listen smtps]\n"
	    "address = 127.0.0.1:10465\n"
	    "tls = implicit\n"
	    "auth = optional\n"
	    "relay = local\n"
	    "[listen submission]\n"
	    "address = 127.0.0.1:10587\n"
	    "tls = starttls\n"
	    "auth = required\n"
	    "[tls]\n"
	    "cert = cert.pem\n"
	    "key = key.pem\n"
	    "[auth]\n"
	    "mechanisms = SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 "
	    "CRAM-MD5 PLAIN LOGIN XOAUTH2 OAUTHBEARER\n"
	    "backend = file:users\n"
	    "workers = 2\n"
	    "[oauth]\n"
	    "jwks = jwks.json\n"
	    "issuer = https://issuer.example.test\n"
	    "audience = smtpgate\n"
	    "[domains]\n"
	    "local = example.test\n"
	    "[limits]\n"
	    "message_size = 64k\n"
	    "recipients = 20\n"
	    "quota_messages_per_day = 0\n"
	    "quota_recipients_per_day = 0\n");
}

static int
fuzz_session_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

static void
fuzz_session_cleanup(void)
{
	if (fuzz_dir[0] != '\0')
		(void)nftw(fuzz_dir, fuzz_session_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The services serve_main starts, for the one worker. */
static void
fuzz_session_start_server(void)
{
	char path[128], err[1024] = "";
	struct conf *c;

	snprintf(path, sizeof(path), "%s/smtpgate.conf", fuzz_dir);
	pthread_mutex_init(&fuzz_srv.lock, NULL);
	if ((c = conf_load(path, err, sizeof(err))) == NULL)
		fuzz_session_die("conf_load", err);
	fuzz_srv.snap = xcalloc(1, sizeof(*fuzz_srv.snap));
	fuzz_srv.snap->refs = 1;
	fuzz_srv.snap->conf = c;
	if ((fuzz_srv.snap->tls = tls_server_new(c, err, sizeof(err))) == NULL)
		fuzz_session_die("tls_server_new", err);
	if ((fuzz_authdb = authdb_open(c, err, sizeof(err))) == NULL)
		fuzz_session_die("authdb_open", err);
	if ((fuzz_oauth = oauth_open(c, err, sizeof(err))) == NULL)
		fuzz_session_die("oauth_open", err);
	fuzz_sasl = auth_sasl_new(fuzz_authdb, c);
	loop_global_init();
	if ((fuzz_srv.queue = queue_open(c, err, sizeof(err))) == NULL)
		fuzz_session_die("queue_open", err);
	fuzz_srv.obs = obs_new();
	if ((fuzz_srv.sendquota = sendquota_new(c, fuzz_srv.obs, err, sizeof(err))) == NULL)
		fuzz_session_die("sendquota_new", err);
	fuzz_srv.limiter = limiter_new(NULL);
	fuzz_srv.workers = fuzz_workers;
	fuzz_srv.nworkers = 1;
	fuzz_worker.srv = &fuzz_srv;
	fuzz_worker.loop = loop_new();
	idmap_init(&fuzz_worker.sessions);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	fuzz_trace = getenv("FUZZ_SESSION_TRACE") != NULL;
	/* the server's writes to a closed client must fail, not kill us */
	signal(SIGPIPE, SIG_IGN);
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz_session.XXXXXX", base);
	if (mkdtemp(fuzz_dir) == NULL)
		fuzz_session_die("mkdtemp", strerror(errno));
	atexit(fuzz_session_cleanup);
	fuzz_session_make_cert();
	fuzz_session_make_users();
	fuzz_session_write_file("jwks.json", FUZZ_SESSION_JWKS);
	fuzz_session_make_conf();
	/* the JSON log is built for every event, then thrown away */
	if (log_open("/dev/null") == -1)
		fuzz_session_die("log_open", strerror(errno));
	log_set_level(LOG_DEBUG);
	fuzz_session_start_server();
	fuzz_client_ctx = SSL_CTX_new(TLS_client_method());
	if (fuzz_client_ctx == NULL)
		fuzz_session_die("SSL_CTX_new", NULL);
	SSL_CTX_set_verify(fuzz_client_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(
	    fuzz_client_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
}

/* --- the client ------------------------------------------------------------ */

/* One pass of the worker's loop; it may block only while an answer is due. */
static void
fuzz_session_pump(struct fuzz_session_client *c, bool may_block)
{
	c->rounds++;
	loop_run_once(fuzz_worker.loop, may_block && fuzz_inflight > 0);
}

static bool
fuzz_session_alive(void)
{
	return fuzz_worker.sessions.count > 0;
}

/* The reply-syntax oracle (RFC 5321 4.2): "NNN" then SP or "-", text, CRLF. */
static void
fuzz_session_check(struct fuzz_session_client *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n && c->check; i++) {
		char ch = p[i];

		if (c->pos < sizeof(c->head))
			c->head[c->pos] = ch;
		if (c->cr && ch != '\n')
			fuzz_session_die("reply with a bare CR", c->head);
		if ((c->pos < 3 && (ch < '0' || ch > '9')) ||
		    (c->pos == 3 && ch != ' ' && ch != '-'))
			fuzz_session_die("malformed reply line", c->head);
		if (ch == '\n' && !c->cr)
			fuzz_session_die("reply with a bare LF", c->head);
		c->cr = ch == '\r';
		c->pos++;
		if (ch != '\n')
			continue;
		/* after the STARTTLS go-ahead the bytes are TLS (a broken
		 * handshake: the input goes on in plaintext) */
		if (c->ssl == NULL && c->pos >= 9 && memcmp(c->head, "220 2.0.0", 9) == 0)
			c->check = false;
		c->pos = 0;
	}
}

/* Reads what the server sent; the number of bytes. */
static size_t
fuzz_session_drain(struct fuzz_session_client *c)
{
	char b[16384];
	size_t total = 0;

	for (int i = 0; i < 64 && !c->eof; i++) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, b, sizeof(b));

			n = r;
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				ERR_clear_error();
				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					c->eof = true;
				break;
			}
		} else {
			n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				c->eof = true;
			if (n <= 0)
				break;
		}
		fuzz_session_check(c, b, (size_t)n);
		if (fuzz_trace)
			fwrite(b, 1, (size_t)n, stderr);
		total += (size_t)n;
	}
	return total;
}

/* Writes up to n bytes: how many, 0 when the socket is full, -1 when the
 * server is gone. */
static ssize_t
fuzz_session_send(struct fuzz_session_client *c, const uint8_t *p, size_t n)
{
	ssize_t w;

	if (c->ssl != NULL) {
		int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

		if (r > 0)
			return r;
		r = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
	}
	w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w >= 0)
		return w;
	return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

/* Bytes the server has not read yet from its socket. */
static int
fuzz_session_unread(const struct fuzz_session_client *c)
{
	int n = 0;

	if (!fuzz_session_alive() || ioctl(c->sfd, FIONREAD, &n) == -1)
		return 0;
	return n;
}

/* The implicit-TLS handshake, run against the loop. */
static void
fuzz_session_handshake(struct fuzz_session_client *c)
{
	c->ssl = SSL_new(fuzz_client_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		fuzz_session_die("SSL_new", NULL);
	SSL_set_connect_state(c->ssl);
	while (c->rounds < FUZZ_SESSION_ROUNDS) {
		int r = SSL_do_handshake(c->ssl);

		if (r == 1)
			return;
		r = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE)
			fuzz_session_die("TLS handshake with the session failed", NULL);
		fuzz_session_pump(c, false);
	}
	fuzz_session_die("TLS handshake with the session never ended", NULL);
}

/*
 * Sends p in writes of chunk bytes without reading, as long as the socket
 * takes them; when it is full, reads what came back and waits for the
 * session. A session that reads nothing, sends nothing and waits for
 * nobody while the client has more to send is hung.
 */
static void
fuzz_session_write(struct fuzz_session_client *c, const uint8_t *p, size_t n, size_t chunk)
{
	size_t off = 0;
	unsigned idle = 0;

	while (off < n && !c->eof && c->rounds < FUZZ_SESSION_ROUNDS) {
		ssize_t w = fuzz_session_send(c, p + off, n - off < chunk ? n - off : chunk);

		if (w < 0) {
			c->eof = true;
			break;
		}
		if (w > 0) {
			off += (size_t)w;
			idle = 0;
			/* "all": as much as the socket takes before the server runs */
			if (chunk != SIZE_MAX)
				fuzz_session_pump(c, false);
			continue;
		}
		/* the socket is full: the server is not reading */
		if (fuzz_session_drain(c) > 0 || fuzz_inflight > 0)
			idle = 0;
		else if (++idle > FUZZ_SESSION_STUCK && fuzz_session_alive())
			fuzz_session_die("the session stopped reading for no reason", NULL);
		fuzz_session_pump(c, true);
	}
}

/* Reads until the server has closed, or the session is idle: no answer
 * due, nothing new read, all input consumed, for FUZZ_SESSION_QUIET passes
 * in a row. Whether it is idle. */
static bool
fuzz_session_settle(struct fuzz_session_client *c)
{
	unsigned quiet = 0;

	while (!c->eof && c->rounds < FUZZ_SESSION_ROUNDS) {
		bool busy =
		    fuzz_session_drain(c) > 0 || fuzz_inflight > 0 || fuzz_session_unread(c) > 0;

		quiet = busy ? 0 : quiet + 1;
		if (quiet >= FUZZ_SESSION_QUIET)
			return true;
		fuzz_session_pump(c, true);
	}
	return false;
}

/* Closes the client; the session must go, and every answer come back. */
static void
fuzz_session_close(struct fuzz_session_client *c)
{
	unsigned rounds = 0;

	if (c->ssl != NULL)
		SSL_free(c->ssl); /* no close_notify: a client may just vanish */
	close(c->fd);
	while (fuzz_session_alive() || fuzz_inflight > 0) {
		if (++rounds > FUZZ_SESSION_ROUNDS)
			fuzz_session_die("the session outlived its client", NULL);
		loop_run_once(fuzz_worker.loop, fuzz_inflight > 0);
	}
	/* deferred frees and posted items still pending run now */
	loop_run_once(fuzz_worker.loop, false);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[8] = {1, 7, 64, 512, 1460, 4096, 16384, SIZE_MAX};
	static const size_t listeners[4] = {
	    FUZZ_SESSION_PLAIN, FUZZ_SESSION_SMTPS, FUZZ_SESSION_SUBMISSION, FUZZ_SESSION_PLAIN};
	struct fuzz_session_client c;
	struct sockaddr_in sa;
	int sv[2], sndbuf[2] = {FUZZ_SESSION_CLIENT_SNDBUF, FUZZ_SESSION_SERVER_SNDBUF};
	size_t li;

	if (size == 0)
		return 0;
	li = listeners[data[0] & 3];
	memset(&c, 0, sizeof(c));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		fuzz_session_die("socketpair", strerror(errno));
	/* a few KiB of replies fill the server's side; the client's takes
	 * several reads' worth at once, which then wait in the session's input */
	for (int i = 0; i < 2; i++)
		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sndbuf[i], sizeof(sndbuf[i]));
	c.fd = sv[0];
	c.sfd = sv[1];
	c.check = true;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* allowlisted: no tarpit, no bans */
	sa.sin_port = htons(40000);
	/* what serve.c does with an accepted socket (no PROXY header here) */
	session_start(&fuzz_worker, server_snap_get(&fuzz_srv), li, c.sfd,
	    (const struct sockaddr *)&sa, NULL);
	if (li == FUZZ_SESSION_SMTPS)
		fuzz_session_handshake(&c);
	fuzz_session_write(&c, data + 1, size - 1, chunks[(data[0] >> 2) & 7]);
	if (fuzz_session_settle(&c) && session_has_stalled_input(&fuzz_worker))
		fuzz_session_die("an idle session holds input it could act on", NULL);
	fuzz_session_close(&c);
	return 0;
}

/*
 * client: the one outbound SMTP/LMTP client, shared by `smtpgate probe` and
 * delivery (DESIGN 1).
 *
 * Model. Blocking calls over a non-blocking socket driven by poll(2): every
 * step (connecting to one address, the TLS handshake, one write, one reply)
 * has its own deadline of conf->timeout_ms, and every read is bounded in size
 * by smtp_reply_parse's limits, so a hostile or broken server costs at most
 * (steps x timeout) of time and a fixed amount of memory. A struct client is
 * one connection, used by one thread at a time; there is no global state but
 * OpenSSL's and GNU SASL's (both thread-safe), so delivery may run one client
 * per worker thread. The process must ignore SIGPIPE (serve and probe do):
 * plaintext writes pass MSG_NOSIGNAL, but TLS records go out through
 * OpenSSL's socket BIO, and a peer that closed would kill the process.
 *
 * Every call returns 0 or -1; after -1, client_error() says what happened
 * (refused, timeout, reset, TLS, an unexpected reply, ...) and
 * client_reply() holds the last reply received, if any. The caller decides:
 * the client never retries and never reconnects by itself.
 *
 * How delivery uses it, per destination and message, from a worker
 * thread (never from an event-loop thread: the calls block):
 *
 *	struct client_conf cc = {.host = "smtp.example.net", .port = "587",
 *	    .tls = CLIENT_TLS_STARTTLS, .verify = CLIENT_VERIFY_PEER_HOST,
 *	    .cafile = NULL, .helo = hostname, .timeout_ms = 300000,
 *	    .ssl_ctx = shared_ctx};      // one SSL_CTX for all deliveries
 *	c = client_new(&cc);
 *	client_connect(c)                // or client_connect_addr() per MX address
 *	client_greeting(c)               // 220 (implicit TLS: handshake first)
 *	client_ehlo(c)                   // LHLO with cc.lmtp
 *	client_starttls(c); client_ehlo(c)   // fails closed when not offered
 *	client_auth(c, "PLAIN", user, secret, len)
 *	client_envelope(c, from, size, flags, rcpts, n, replies)  // pipelined when offered
 *	client_data(c, msg, len)
 *	   (for LMTP: client_data_lmtp_next(c) once per further accepted recipient)
 *	client_quit(c); client_free(c);
 *
 * and maps a failure to a retry decision with client_error_is_transient()
 * and to a log diagnosis with reply_map (src/explain/reply_map.h) applied
 * to client_reply()'s whole text. With cc.transcript set, every line sent and received is
 * recorded (secrets redacted) for the probe; delivery leaves it NULL.
 */
#ifndef SG_CLIENT_CLIENT_H
#define SG_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "lib/buf.h"

#define CLIENT_AUTH_MECHS_MAX 24 /* mechanisms kept from one AUTH line */
#define CLIENT_MECH_NAME_MAX 20 /* RFC 4422 3.1: 1..20 characters */
#define CLIENT_CHAIN_MAX 10 /* certificates kept from the peer's chain */
#define CLIENT_TLS_ERRORS_MAX 8 /* verification errors kept */
#define CLIENT_REPLY_LINE_MAX 512 /* kept copy of a reply's final line */
#define CLIENT_REPLY_TEXT_MAX 2048 /* kept copy of a whole reply, every line */
#define CLIENT_TRANSCRIPT_MAX_ENTRIES 4000
#define CLIENT_TRANSCRIPT_MAX_BYTES (512 * 1024)
#define CLIENT_TRANSCRIPT_LINE_MAX 1024 /* longer lines are cut, marked "..." */
#define CLIENT_READ_BUF_MAX 16384 /* raw bytes read but not yet parsed */
#define CLIENT_TIMEOUT_DEFAULT_MS 30000
#define CLIENT_SECRET_MAX 8192 /* longest password or bearer token */

/* --- capabilities (pure; client_caps.c) ---------------------------------- */

struct client_caps {
	bool ehlo; /* EHLO/LHLO accepted (false: HELO fallback) */
	bool starttls, pipelining, eightbitmime, smtputf8, chunking, enhancedstatuscodes, dsn;
	bool auth; /* an AUTH (or AUTH=) keyword */
	bool size; /* SIZE given */
	unsigned long long size_max; /* SIZE's value; 0: no limit announced */
	size_t nmechs;
	char mechs[CLIENT_AUTH_MECHS_MAX][CLIENT_MECH_NAME_MAX + 1]; /* upper case, unique */
	bool mechs_truncated; /* more than CLIENT_AUTH_MECHS_MAX, or a bad name */
};

void client_caps_reset(struct client_caps *caps);
/* One EHLO line after the first (which is the server's name): keyword and
 * parameters (RFC 5321 4.1.1.1). Unknown keywords are ignored. */
void client_caps_parse_line(struct client_caps *caps, const char *line, size_t len);
bool client_caps_has_mech(const struct client_caps *caps, const char *mech);

/* --- transcript (client_transcript.c) ------------------------------------ */

enum client_tdir {
	CLIENT_T_SERVER = 'S', /* a line received */
	CLIENT_T_CLIENT = 'C', /* a line sent */
	CLIENT_T_INFO = '*', /* what the client did or saw (connect, TLS, timeout) */
};

struct client_transcript_entry {
	char dir; /* enum client_tdir */
	long long ms; /* since the transcript was created */
	char *text; /* printable: control bytes and non-ASCII escaped as \xHH */
};

struct client_transcript {
	struct client_transcript_entry *v;
	size_t n;
	size_t bytes;
	bool truncated; /* entries were dropped at the limits */
	long long start_ms;
};

void client_transcript_init(struct client_transcript *t);
void client_transcript_free(struct client_transcript *t);
/* Adds a line (escaped, cut at CLIENT_TRANSCRIPT_LINE_MAX). */
void client_transcript_add(struct client_transcript *t, char dir, const char *p, size_t n);
void client_transcript_addf(struct client_transcript *t, char dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Pure: the form of a command line as the transcript shows it. in_auth: the
 * line answers a 334 challenge (shown as "<redacted>"); "AUTH MECH IR" is
 * shown as "AUTH MECH <redacted>". Appends to out. */
int client_transcript_redact(const char *line, size_t len, bool in_auth, struct buf *out)
    __attribute__((warn_unused_result));
/* Pure: escapes p for display (\xHH for bytes outside 0x20..0x7e), at most
 * max bytes of input ("..." appended when cut). */
int client_escape(const char *p, size_t n, size_t max, struct buf *out)
    __attribute__((warn_unused_result));

/* --- SASL responses (client_sasl.c; pure except the GNU SASL driver) ----- */

/* RFC 4616: authzid NUL authcid NUL passwd (authzid empty). Raw bytes. */
int client_sasl_plain(const char *user, const char *pass, size_t passlen, struct buf *out)
    __attribute__((warn_unused_result));
/* Google/Microsoft XOAUTH2: "user=U\x01auth=Bearer T\x01\x01". Raw bytes. */
int client_sasl_xoauth2(const char *user, const char *token, size_t tokenlen, struct buf *out)
    __attribute__((warn_unused_result));
/* RFC 7628 3.1: "n,a=U,\x01host=H\x01port=P\x01auth=Bearer T\x01\x01", with
 * ',' and '=' in U escaped as "=2C" and "=3D" (RFC 5801 4). Raw bytes. */
int client_sasl_oauthbearer(const char *user, const char *host, const char *port, const char *token,
    size_t tokenlen, struct buf *out) __attribute__((warn_unused_result));

/* Mechanisms this client can run, strongest first; NULL-terminated. */
extern const char *const client_sasl_mechs[];
bool client_sasl_is_supported(const char *mech);
/* The mechanism needs a bearer token rather than a password. */
bool client_sasl_is_oauth(const char *mech);

/* --- connection ------------------------------------------------------------ */

enum client_tls_mode {
	CLIENT_TLS_NONE,
	CLIENT_TLS_STARTTLS, /* client_starttls() when the caller says */
	CLIENT_TLS_IMPLICIT, /* handshake right after connect (RFC 8314) */
};

/* One TLSA record (RFC 6698 2.1) for DANE. */
struct client_tlsa {
	unsigned char usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

enum client_verify {
	CLIENT_VERIFY_NONE, /* encrypt, check nothing (results still collected) */
	CLIENT_VERIFY_PEER, /* chain to a trusted root */
	CLIENT_VERIFY_PEER_HOST, /* and the name (X509_VERIFY_PARAM_set1_host) */
};

struct client_conf {
	const char *host; /* name or address literal to connect to */
	const char *port; /* service or number; default "25" */
	const char *unix_path; /* LMTP over a unix socket (host/port unused) */
	enum client_tls_mode tls;
	enum client_verify verify;
	/* Collect verification results but let the handshake succeed whatever
	 * they are (the probe reports them all); delivery leaves it false. */
	bool verify_soft;
	const char *cafile; /* NULL: the system store */
	const char *sni; /* NULL: host unless it is an address literal */
	const char *verify_host; /* NULL: sni, else host */
	bool tls_legacy; /* allow TLS 1.0/1.1 at security level 0 (probe's check) */
	SSL_CTX *ssl_ctx; /* shared context to use (ref taken); NULL: own one */
	const char *helo; /* EHLO name; default "localhost" */
	bool lmtp; /* LHLO, and one reply per recipient after DATA */
	int timeout_ms; /* per step; 0: CLIENT_TIMEOUT_DEFAULT_MS */
	struct client_transcript *transcript; /* NULL: none */
	/*
	 * DANE (RFC 7671, RFC 7672): with ndane > 0 the handshake
	 * authenticates the peer by these TLSA records through OpenSSL's DANE
	 * API (SSL_dane_enable(dane_base), SSL_dane_tlsa_add per record; DANE-EE
	 * without name checks, RFC 7672 3.1.1) instead of the CA store, and
	 * fails with CLIENT_E_TLS_VERIFY when none matches (verify must not be
	 * NONE). A shared ssl_ctx must have had SSL_CTX_dane_enable(). Records
	 * are copied by client_new.
	 */
	const struct client_tlsa *dane;
	size_t ndane;
	const char *dane_base; /* TLSA base domain; NULL: host */
};

enum client_err {
	CLIENT_E_NONE,
	CLIENT_E_RESOLVE, /* the name does not resolve */
	CLIENT_E_REFUSED, /* connection refused (nothing listens) */
	CLIENT_E_CONNECT_TIMEOUT, /* no answer to the connection attempt */
	CLIENT_E_UNREACHABLE, /* other connect errors: no route, ... */
	CLIENT_E_RESET, /* the peer reset the connection */
	CLIENT_E_CLOSED, /* the peer closed before a complete reply */
	CLIENT_E_TIMEOUT, /* a reply or write did not complete in time */
	CLIENT_E_PROTOCOL, /* a malformed reply, or one over the limits */
	CLIENT_E_TLS_BYTES, /* TLS records arrived where SMTP was expected */
	CLIENT_E_TLS, /* the TLS handshake or a TLS record failed */
	CLIENT_E_TLS_VERIFY, /* the certificate did not verify (not soft) */
	CLIENT_E_REPLY, /* the server refused: client_reply() */
	CLIENT_E_UNSUPPORTED, /* not offered, or not something this client does */
	CLIENT_E_AUTH, /* the server's SASL challenge or proof was bad */
	CLIENT_E_LOCAL, /* local failure: setup, unreadable CA file, bad argument */
};

enum client_tls_fail {
	CLIENT_TLS_FAIL_NONE,
	CLIENT_TLS_FAIL_NOT_TLS, /* the peer answered something that is not TLS */
	CLIENT_TLS_FAIL_VERSION, /* no protocol version in common */
	CLIENT_TLS_FAIL_VERIFY, /* certificate verification (hard mode) */
	CLIENT_TLS_FAIL_OTHER,
};

struct client_error {
	enum client_err kind;
	int sys_errno; /* 0 when not a system error */
	char detail[256]; /* human text: "connect to 127.0.0.1:25: Connection refused" */
	size_t partial; /* bytes of an incomplete reply when the step failed */
};

struct client_reply {
	int code; /* 0: none yet */
	char enh[16]; /* RFC 3463, "" when none */
	char line[CLIENT_REPLY_LINE_MAX]; /* final line, escaped: "535 5.7.8 ..." */
	/* every line in order, each escaped as line is and joined by '\n'
	 * ("534-5.7.9 Application-specific ...\n534 5.7.9  https://..."); cut
	 * with "..." past CLIENT_REPLY_TEXT_MAX. The cause of a refusal is often
	 * on a line before the last. */
	char text[CLIENT_REPLY_TEXT_MAX];
	unsigned flags; /* enum smtp_reply_flag */
	char cmd[16]; /* verb of the command it answers: "EHLO", "AUTH", "" (greeting) */
};

struct client_cert_info {
	char subject[256]; /* RFC 2253 */
	char issuer[256];
	char names[512]; /* subjectAltName DNS and IP entries, comma separated */
	char key[32]; /* "EC 256", "RSA 2048" */
	long long not_before, not_after; /* seconds since the epoch */
	bool self_signed; /* self-issued and signed by its own key */
};

struct client_tls_info {
	bool active;
	char version[16]; /* "TLSv1.3" */
	char cipher[64];
	char sni[256]; /* "" when none sent */
	char verify_host[256];
	int version_num; /* TLS1_2_VERSION, ... */
	enum client_tls_fail fail;
	char fail_detail[256]; /* OpenSSL's reason, or the alert received */
	/* Verification as OpenSSL did it (each error at its depth, in order). */
	size_t nerrors;
	struct {
		int err; /* X509_V_ERR_* */
		int depth;
	} errors[CLIENT_TLS_ERRORS_MAX];
	bool verified; /* no error at all */
	size_t verified_len; /* certificates in the verified chain (root included) */
	size_t nchain; /* as sent by the server, leaf first */
	struct client_cert_info chain[CLIENT_CHAIN_MAX];
	size_t sent_len; /* certificates the server sent (may exceed nchain) */
	size_t discarded; /* bytes buffered before the STARTTLS handshake, dropped */
	bool dane; /* DANE was in force for this handshake */
	bool dane_matched; /* a TLSA record matched (the handshake then succeeded) */
	int dane_depth; /* depth of the matching certificate; -1: none */
	unsigned dane_usage, dane_selector, dane_mtype; /* the record that matched */
};

struct client;

/* Copies what it needs from conf (strings too); never NULL. */
struct client *client_new(const struct client_conf *conf);
/* Closes the connection, wipes secrets. c may be NULL. */
void client_free(struct client *c);

/* Resolves host:port (getaddrinfo) and tries each address in turn. */
int client_connect(struct client *c) __attribute__((warn_unused_result));
/* Connects to one given address (MX delivery, the probe's own resolver). */
int client_connect_addr(struct client *c, const struct sockaddr *sa, socklen_t salen)
    __attribute__((warn_unused_result));
/* Reads the greeting (implicit TLS: after the handshake, done here); 220. */
int client_greeting(struct client *c) __attribute__((warn_unused_result));
/* EHLO (LHLO), falling back to HELO on 500/502 (never for LMTP); fills caps. */
int client_ehlo(struct client *c) __attribute__((warn_unused_result));
/* STARTTLS (CLIENT_E_UNSUPPORTED when not offered), 220, handshake. Bytes
 * the server sent after its 220 are discarded (RFC 3207 4.2: response
 * injection); capabilities are forgotten: call client_ehlo() again. */
int client_starttls(struct client *c) __attribute__((warn_unused_result));
/*
 * AUTH with mech (one of client_sasl_mechs); secret is the password or, for
 * XOAUTH2/OAUTHBEARER, the bearer token. -PLUS mechanisms bind to the TLS
 * channel (tls-exporter on TLS 1.3, tls-unique on 1.2). A 334 error
 * challenge of the OAuth mechanisms is answered as RFC 7628 3.2.3 says and
 * the final reply read. The secret is not kept.
 */
int client_auth(struct client *c, const char *mech, const char *user, const char *secret,
    size_t secretlen) __attribute__((warn_unused_result));
/* MAIL FROM:<from> [SIZE=size when offered and size > 0] [SMTPUTF8, 8BITMIME
 * as flags say]. */
#define CLIENT_MAIL_8BIT (1u << 0)
#define CLIENT_MAIL_SMTPUTF8 (1u << 1)
int client_mail(struct client *c, const char *from, size_t size, unsigned flags)
    __attribute__((warn_unused_result));
int client_rcpt(struct client *c, const char *to) __attribute__((warn_unused_result));
/*
 * The envelope: MAIL FROM (as client_mail) and RCPT TO for each of to[0..n).
 * With PIPELINING offered (RFC 2920 3.1) the commands go out in groups of up
 * to CLIENT_PIPELINE_MAX in one write each and the replies are read in
 * order; without it, one command and its reply at a time. rcpt_r[i] gets
 * recipient i's reply (code 0: none read). Returns 0 when MAIL was accepted
 * and every RCPT reply was read (each may be a refusal: see rcpt_r), -1
 * otherwise: MAIL refused (the RCPT replies, 503 or so, are still read to
 * stay in step, and client_reply() is MAIL's again; CLIENT_E_REPLY even
 * when the session ends before them, as it does after a 421) or the
 * session broke (client_error(); rcpt_r of the replies read so far are set).
 */
#define CLIENT_PIPELINE_MAX 64
int client_envelope(struct client *c, const char *from, size_t size, unsigned flags,
    const char *const *to, size_t n, struct client_reply *rcpt_r)
    __attribute__((warn_unused_result));
/* The message (CRLF line ends) by BDAT when CHUNKING was offered, else DATA
 * with dot-stuffing; a missing final CRLF is added. 250 expected. */
int client_data(struct client *c, const char *msg, size_t len) __attribute__((warn_unused_result));
/* The same with pre[0..prelen) (whole CRLF-ended lines, e.g. an added
 * header field) sent in front of msg, without copying msg first. */
int client_data_prefixed(struct client *c, const char *pre, size_t prelen, const char *msg,
    size_t len) __attribute__((warn_unused_result));
/* LMTP: the reply for the next accepted recipient after the first. */
int client_data_lmtp_next(struct client *c) __attribute__((warn_unused_result));
int client_rset(struct client *c) __attribute__((warn_unused_result));
/* QUIT and close; errors ignored (the work is done). */
void client_quit(struct client *c);
/* Closes at once, without QUIT (a peer that never greeted, a failed
 * handshake). Error, reply and TLS information stay readable. */
void client_disconnect(struct client *c);
/* Any command (no CR/LF inside) and its reply; 0 when the reply is 2xx/3xx. */
int client_command(struct client *c, const char *line) __attribute__((warn_unused_result));

const struct client_error *client_error(const struct client *c);
const struct client_reply *client_reply(const struct client *c);
const struct client_caps *client_caps(const struct client *c);
const struct client_tls_info *client_tls_info(const struct client *c);
const char *client_peer(const struct client *c); /* "127.0.0.1:587" once connected */
bool client_is_tls(const struct client *c);
/* The last failure may go away by itself (4xx, network): retry later. */
bool client_error_is_transient(const struct client *c);
const char *client_err_name(enum client_err e);

/* Pure: appends the DATA form of msg (dot-stuffed, CRLF-terminated, then
 * ".\r\n"), RFC 5321 4.5.2. */
int client_dot_stuff(const char *msg, size_t len, struct buf *out)
    __attribute__((warn_unused_result));

#endif

/*
 * libFuzzer target: arbitrary server bytes against the outbound client
 * (src/client/), in-process and over a real socket. A peer thread accepts
 * on a unix socket, writes the input to the client (then shuts its side
 * down, so the client sees EOF instead of waiting), and reads and drops
 * what the client sends; a second connection in one run is closed at once.
 *
 * Input: two option bytes, then the server's bytes.
 *   byte 0: bit 0 mode (0: the client calls in the order the probe and
 *           delivery make them; 1: deliver_run of src/relay/deliver.c on a
 *           smarthost or LMTP route, with its session cache and a second
 *           message), bit 1 LMTP, bits 2-3 TLS (none, STARTTLS, implicit,
 *           none), bit 4 transcript (mode 0) / second message (mode 1),
 *           bit 5 8BITMIME body, bit 6 SMTPUTF8, bit 7 an added header
 *           (the DKIM signature's place) in front of the message.
 *   byte 1: low nibble the AUTH mechanism (0: none, 1..9
 *           client_sasl_mechs[n - 1], 10: every offered one as the probe
 *           does), high nibble the recipients (1..12, or 64..73 to cross a
 *           PIPELINING group).
 * The -PLUS mechanisms get made-up channel binding data so they run
 * without a handshake. After every run the reply, error, capabilities and
 * transcript must be within their limits and printable; abort() when not.
 * With FUZZ_CLIENT_REPLY_SHOW set, mode 0 prints the transcript and mode 1
 * the results (to see what a reproducer does).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "client/client.h"
#include "client/client_priv.h"
#include "conf/conf.h"
#include "explain/reply_map.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/envelope.h"
#include "relay/creds.h"
#include "relay/deliver.h"
#include "queue/qfile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CLIENT_REPLY_TIMEOUT_MS 2000 /* per client step; EOF normally ends a run long before */
#define FUZZ_CLIENT_REPLY_RCPTS_MAX 73

static char fuzz_client_reply_dir[64];
static char fuzz_client_reply_sock[128];
static char fuzz_client_reply_creds[128];
static int fuzz_client_reply_listen_fd = -1;
static int fuzz_client_reply_stop[2] = {-1, -1};
static SSL_CTX *fuzz_client_reply_ctx;
static struct creds *fuzz_client_reply_creds_store;
static bool fuzz_client_reply_show;

static const char fuzz_client_reply_body[] = "From: <alice@example.test>\r\n"
                                             "To: <bob@example.net>\r\n"
                                             "Subject: fuzz\r\n"
                                             "\r\n"
                                             ".a line that starts with a dot\r\n"
                                             "..two\r\n"
                                             "the last line has no CRLF";
static const char fuzz_client_reply_header[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; d=example.test;\r\n"
    "\ts=sel; b=AAAA\r\n";

/* --- the peer ------------------------------------------------------------------ */

struct fuzz_client_reply_peer {
	const uint8_t *data;
	size_t len;
};

/* Accepts every pending connection and closes it. */
static void
fuzz_client_reply_peer_drain_backlog(void)
{
	int fd;

	while ((fd = accept4(fuzz_client_reply_listen_fd, NULL, NULL, SOCK_CLOEXEC)) != -1)
		close(fd);
}

static void *
fuzz_client_reply_peer_main(void *arg)
{
	struct fuzz_client_reply_peer *p = arg;
	int conn = -1, conns = 0;
	size_t off = 0;
	char sink[16384];

	for (;;) {
		struct pollfd pfd[3] = {
		    {.fd = fuzz_client_reply_stop[0], .events = POLLIN},
		    {.fd = fuzz_client_reply_listen_fd, .events = POLLIN},
		    {.fd = conn, .events = (short)(POLLIN | (off < p->len ? POLLOUT : 0))},
		};

		if (poll(pfd, conn != -1 ? 3 : 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			abort();
		}
		if (pfd[0].revents != 0) {
			char b;

			(void)!read(fuzz_client_reply_stop[0], &b, 1);
			break;
		}
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(
			    fuzz_client_reply_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd != -1 && conns++ == 0) {
				conn = fd;
				if (p->len == 0)
					shutdown(conn, SHUT_WR);
				continue;
			}
			if (fd != -1)
				close(fd); /* a second session: the peer is gone */
		}
		if (conn == -1)
			continue;
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(conn, sink, sizeof(sink));

			if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
				close(conn);
				conn = -1;
				continue;
			}
		}
		if (off < p->len && (pfd[2].revents & POLLOUT)) {
			ssize_t n = send(conn, p->data + off, p->len - off, MSG_NOSIGNAL);

			if (n > 0) {
				off += (size_t)n;
				if (off == p->len)
					shutdown(conn, SHUT_WR);
			} else if (n == -1 && errno != EAGAIN && errno != EINTR) {
				close(conn);
				conn = -1;
			}
		}
	}
	if (conn != -1)
		close(conn);
	fuzz_client_reply_peer_drain_backlog();
	return NULL;
}

/* --- checks ---------------------------------------------------------------------- */

static void
fuzz_client_reply_check_printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n == max)
		abort(); /* not NUL-terminated */
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
	}
}

static void
fuzz_client_reply_check_reply(const struct client_reply *r)
{
	if (r->code != 0 && (r->code < 200 || r->code > 559))
		abort();
	fuzz_client_reply_check_printable(r->line, sizeof(r->line));
	if (strnlen(r->enh, sizeof(r->enh)) > SMTP_REPLY_ENH_MAX)
		abort();
	fuzz_client_reply_check_printable(r->cmd, sizeof(r->cmd));
	/* the diagnosis the probe and the delivery log give */
	(void)reply_map_find(r->code, r->enh, r->cmd, r->line);
}

static void
fuzz_client_reply_check_client(const struct client *c, const struct client_transcript *t)
{
	const struct client_caps *k = client_caps(c);
	const struct client_error *e = client_error(c);

	fuzz_client_reply_check_reply(client_reply(c));
	if (strnlen(e->detail, sizeof(e->detail)) == sizeof(e->detail))
		abort();
	(void)client_err_name(e->kind);
	(void)client_error_is_transient(c);
	if (k->nmechs > CLIENT_AUTH_MECHS_MAX)
		abort();
	for (size_t i = 0; i < k->nmechs; i++) {
		size_t n = strnlen(k->mechs[i], sizeof(k->mechs[i]));

		if (n == 0 || n > CLIENT_MECH_NAME_MAX)
			abort();
		for (size_t j = 0; j < n; j++) {
			char ch = k->mechs[i][j];

			if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			        ch == '_'))
				abort();
		}
	}
	if (t == NULL)
		return;
	if (t->n > CLIENT_TRANSCRIPT_MAX_ENTRIES)
		abort();
	for (size_t i = 0; i < t->n; i++)
		fuzz_client_reply_check_printable(t->v[i].text, 4 * CLIENT_TRANSCRIPT_LINE_MAX + 8);
}

/* --- mode 0: the client calls ---------------------------------------------------- */

struct fuzz_client_reply_opts {
	bool deliver, lmtp, transcript_or_second, body_8bit, smtputf8, header;
	enum client_tls_mode tls;
	int mech; /* 0 none, 1..9 client_sasl_mechs[mech - 1], 10 all offered */
	size_t nrcpts;
};

static void
fuzz_client_reply_opts_parse(const uint8_t *d, struct fuzz_client_reply_opts *o)
{
	unsigned t = (d[0] >> 2) & 3, r = d[1] >> 4;

	o->deliver = d[0] & 1;
	o->lmtp = d[0] & 2;
	o->tls = t == 1 ? CLIENT_TLS_STARTTLS : t == 2 ? CLIENT_TLS_IMPLICIT : CLIENT_TLS_NONE;
	o->transcript_or_second = d[0] & 16;
	o->body_8bit = d[0] & 32;
	o->smtputf8 = d[0] & 64;
	o->header = d[0] & 128;
	o->mech = (d[1] & 15) <= 10 ? d[1] & 15 : 0;
	o->nrcpts = r < 12 ? r + 1 : 64 + (r - 12) * 3;
}

static const char *
fuzz_client_reply_rcpt(size_t i)
{
	static char names[FUZZ_CLIENT_REPLY_RCPTS_MAX][32];

	snprintf(names[i], sizeof(names[i]), "rcpt%zu@example.net", i);
	return names[i];
}

/* AUTH with one mechanism, -PLUS with made-up channel binding data. */
static int
fuzz_client_reply_auth_one(struct client *c, const char *mech)
{
	static const char secret[] = "fuzz secret";

	if (strlen(mech) > 5 && strcasecmp(mech + strlen(mech) - 5, "-PLUS") == 0 &&
	    c->cblen == 0) {
		memset(c->cb, 0x42, 32);
		c->cblen = 32;
		c->cb_exporter = true;
	}
	return client_auth(c, mech, "fuzz@example.test", secret, sizeof(secret) - 1);
}

/* AUTH as asked: 0 go on, -1 the session is over. */
static int
fuzz_client_reply_auth(struct client *c, const struct fuzz_client_reply_opts *o)
{
	const struct client_caps *k = client_caps(c);
	char offered[CLIENT_AUTH_MECHS_MAX][CLIENT_MECH_NAME_MAX + 1];
	size_t n = 0;

	if (o->mech == 0)
		return 0;
	if (o->mech <= 9)
		return fuzz_client_reply_auth_one(c, client_sasl_mechs[o->mech - 1]) == 0 ||
		        client_error(c)->kind == CLIENT_E_REPLY
		    ? 0
		    : -1;
	/* the probe: each offered mechanism this client knows, strongest first */
	for (size_t i = 0; client_sasl_mechs[i] != NULL; i++) {
		if (client_caps_has_mech(k, client_sasl_mechs[i]))
			snprintf(offered[n++], sizeof(offered[0]), "%s", client_sasl_mechs[i]);
	}
	for (size_t i = 0; i < n; i++) {
		if (fuzz_client_reply_auth_one(c, offered[i]) == 0)
			return 0;
		if (client_error(c)->kind != CLIENT_E_REPLY)
			return -1;
	}
	return 0;
}

static void
fuzz_client_reply_calls(const struct fuzz_client_reply_opts *o)
{
	struct client_transcript t;
	struct client_reply rr[FUZZ_CLIENT_REPLY_RCPTS_MAX];
	const char *to[FUZZ_CLIENT_REPLY_RCPTS_MAX];
	struct client_conf cc = {
	    .host = "mx.fuzz.invalid",
	    .port = "25",
	    .unix_path = fuzz_client_reply_sock,
	    .tls = o->tls,
	    .verify = CLIENT_VERIFY_PEER_HOST,
	    .verify_soft = true,
	    .ssl_ctx = fuzz_client_reply_ctx,
	    .helo = "fuzz.smtpgate.invalid",
	    .lmtp = o->lmtp,
	    .timeout_ms = FUZZ_CLIENT_REPLY_TIMEOUT_MS,
	    .transcript = o->transcript_or_second || fuzz_client_reply_show ? &t : NULL,
	};
	struct client *c;
	size_t accepted = 0;
	unsigned flags =
	    (o->body_8bit ? CLIENT_MAIL_8BIT : 0) | (o->smtputf8 ? CLIENT_MAIL_SMTPUTF8 : 0);

	client_transcript_init(&t);
	c = client_new(&cc);
	for (size_t i = 0; i < o->nrcpts; i++)
		to[i] = fuzz_client_reply_rcpt(i);
	if (client_connect(c) == -1 || client_greeting(c) == -1 || client_ehlo(c) == -1)
		goto out;
	if (o->tls == CLIENT_TLS_STARTTLS && (client_starttls(c) == -1 || client_ehlo(c) == -1))
		goto out;
	fuzz_client_reply_check_client(c, cc.transcript);
	if (fuzz_client_reply_auth(c, o) == -1)
		goto out;
	if (client_envelope(c, "alice@example.test", sizeof(fuzz_client_reply_body) - 1, flags, to,
	        o->nrcpts, rr) == -1 &&
	    client_error(c)->kind != CLIENT_E_REPLY)
		goto out;
	for (size_t i = 0; i < o->nrcpts; i++) {
		fuzz_client_reply_check_reply(&rr[i]);
		accepted += rr[i].code / 100 == 2;
	}
	if (accepted > 0 &&
	    client_data_prefixed(c, o->header ? fuzz_client_reply_header : NULL,
	        o->header ? sizeof(fuzz_client_reply_header) - 1 : 0, fuzz_client_reply_body,
	        sizeof(fuzz_client_reply_body) - 1) == 0) {
		for (size_t i = 1; o->lmtp && i < accepted; i++) {
			if (client_data_lmtp_next(c) == -1 &&
			    client_error(c)->kind != CLIENT_E_REPLY)
				goto out;
		}
	}
	if (client_rset(c) == 0)
		(void)client_command(c, "NOOP");
out:
	fuzz_client_reply_check_client(c, cc.transcript);
	client_quit(c);
	fuzz_client_reply_check_client(c, cc.transcript);
	client_free(c);
	for (size_t i = 0; fuzz_client_reply_show && i < t.n; i++)
		fprintf(stderr, "%c %s\n", t.v[i].dir, t.v[i].text);
	client_transcript_free(&t);
}

/* --- mode 1: deliver_run ------------------------------------------------------------ */

static void
fuzz_client_reply_check_results(const struct deliver_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (res[i].state > QFILE_FAILED || res[i].code < 0 || res[i].code > 559 ||
		    strnlen(res[i].text, sizeof(res[i].text)) == sizeof(res[i].text) ||
		    strnlen(res[i].enh, sizeof(res[i].enh)) == sizeof(res[i].enh))
			abort();
	}
}

static void
fuzz_client_reply_deliver(const struct fuzz_client_reply_opts *o)
{
	/* a route as [relay] would make it, built by hand (conf's constructor
	 * is private to conf/) */
	struct conf_route *r = xcalloc(1, sizeof(*r));
	struct deliver_ctx ctx = {
	    .helo = "fuzz.smtpgate.invalid", .creds = fuzz_client_reply_creds_store};
	struct deliver_result res[FUZZ_CLIENT_REPLY_RCPTS_MAX];
	size_t idx[FUZZ_CLIENT_REPLY_RCPTS_MAX];
	struct deliver_conn *dc = deliver_conn_new();
	struct qfile q;
	struct buf env;
	const char *errstr = NULL;
	char relay[300];

	r->kind = o->lmtp ? CONF_ROUTE_LMTP : CONF_ROUTE_SMARTHOST;
	r->unix_path = xstrdup(fuzz_client_reply_sock);
	r->host = xstrdup("smarthost.fuzz.invalid");
	r->port = xstrdup("587");
	r->tls = o->tls == CLIENT_TLS_STARTTLS ? CONF_TLS_STARTTLS
	    : o->tls == CLIENT_TLS_IMPLICIT    ? CONF_TLS_IMPLICIT
	                                       : CONF_TLS_NONE;
	r->verify = CONF_VERIFY_NONE;
	r->tls_set = r->verify_set = r->auth_set = true;
	r->timeout = FUZZ_CLIENT_REPLY_TIMEOUT_MS / 1000;
	if (o->mech >= 1 && o->mech <= 9) {
		r->auth = xstrdup(client_sasl_mechs[o->mech - 1]);
		r->credentials = xstrdup(fuzz_client_reply_creds);
	}
	buf_init(&env, ENVELOPE_MAX);
	if (buf_printf(&env,
	        "smtpgate-envelope: 1\nid: 1k0x4xx88tqwka93rq\narrival: 1700000000\n"
	        "sender: alice@example.test\nsmtputf8: %s\nbody: %s\n",
	        o->smtputf8 ? "yes" : "no", o->body_8bit ? "8bitmime" : "7bit") == -1)
		abort();
	for (size_t i = 0; i < o->nrcpts; i++) {
		if (buf_printf(&env, "rcpt: %s\n", fuzz_client_reply_rcpt(i)) == -1)
			abort();
		idx[i] = i;
	}
	memset(&q, 0, sizeof(q));
	snprintf(q.id, sizeof(q.id), "1k0x4xx88tqwka93rq");
	q.fd = -1;
	q.body = fuzz_client_reply_body;
	q.body_len = sizeof(fuzz_client_reply_body) - 1;
	q.env = envelope_parse(env.data, env.len, &errstr);
	if (q.env == NULL)
		abort();
	for (int round = 0; round < (o->transcript_or_second ? 2 : 1); round++) {
		deliver_run(
		    &ctx, dc, r, "example.net", &q, idx, o->nrcpts, res, relay, sizeof(relay));
		fuzz_client_reply_check_results(res, o->nrcpts);
		for (size_t i = 0; fuzz_client_reply_show && i < o->nrcpts; i++)
			fprintf(stderr, "message %d rcpt %zu: %s %d %s (%s) via %s\n", round + 1, i,
			    qfile_state_name(res[i].state), res[i].code, res[i].text,
			    res[i].finding != NULL ? res[i].finding : "-", relay);
	}
	deliver_conn_free(dc);
	envelope_free(q.env);
	buf_free(&env);
	free(r->unix_path);
	free(r->host);
	free(r->port);
	free(r->auth);
	free(r->credentials);
	free(r);
}

/* --- libFuzzer ------------------------------------------------------------------------ */

static void
fuzz_client_reply_cleanup(void)
{
	unlink(fuzz_client_reply_sock);
	unlink(fuzz_client_reply_creds);
	rmdir(fuzz_client_reply_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	(void)argc;
	(void)argv;
	/* as `smtpgate serve` does (serve.c): a write to a closed peer over
	 * TLS is an EPIPE, not a signal */
	signal(SIGPIPE, SIG_IGN);
	/* no CA store: a smarthost route's client makes its own SSL_CTX, and
	 * loading the system bundle for each costs more than the rest of a
	 * run (nothing here can verify anyway) */
	setenv("SSL_CERT_FILE", "/dev/null", 1);
	setenv("SSL_CERT_DIR", "/nonexistent", 1);
	if (log_open("/dev/null") == -1)
		abort();
	snprintf(
	    fuzz_client_reply_dir, sizeof(fuzz_client_reply_dir), "/tmp/fuzz_client_reply.XXXXXX");
	if (mkdtemp(fuzz_client_reply_dir) == NULL)
		abort();
	snprintf(
	    fuzz_client_reply_sock, sizeof(fuzz_client_reply_sock), "%s/s", fuzz_client_reply_dir);
	snprintf(fuzz_client_reply_creds, sizeof(fuzz_client_reply_creds), "%s/creds",
	    fuzz_client_reply_dir);
	atexit(fuzz_client_reply_cleanup);
	fd = open(fuzz_client_reply_creds, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, "fuzz@example.test fuzz secret\n", 30) != 30)
		abort();
	close(fd);
	memcpy(sun.sun_path, fuzz_client_reply_sock, strlen(fuzz_client_reply_sock) + 1);
	fuzz_client_reply_listen_fd =
	    socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fuzz_client_reply_listen_fd == -1 ||
	    bind(fuzz_client_reply_listen_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fuzz_client_reply_listen_fd, 16) == -1 ||
	    pipe2(fuzz_client_reply_stop, O_CLOEXEC) == -1)
		abort();
	fuzz_client_reply_ctx = SSL_CTX_new(TLS_client_method());
	if (fuzz_client_reply_ctx == NULL)
		abort();
	SSL_CTX_set_min_proto_version(fuzz_client_reply_ctx, TLS1_2_VERSION);
	fuzz_client_reply_creds_store = creds_new();
	fuzz_client_reply_show = getenv("FUZZ_CLIENT_REPLY_SHOW") != NULL;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client_reply_peer peer;
	struct fuzz_client_reply_opts o;
	pthread_t th;

	if (size < 2)
		return 0;
	fuzz_client_reply_opts_parse(data, &o);
	peer.data = data + 2;
	peer.len = size - 2;
	if (pthread_create(&th, NULL, fuzz_client_reply_peer_main, &peer) != 0)
		abort();
	if (o.deliver)
		fuzz_client_reply_deliver(&o);
	else
		fuzz_client_reply_calls(&o);
	if (write(fuzz_client_reply_stop[1], "x", 1) != 1)
		abort();
	pthread_join(th, NULL);
	return 0;
}

/*
 * loadgen: SMTP submission load generator (bench/, figures only, never pass/fail).
 *
 * Runs many concurrent sessions of: connect, 220, EHLO, STARTTLS, TLS handshake, EHLO,
 * AUTH PLAIN (initial response), M x (MAIL, RCPT, DATA, body, "."), QUIT; then starts a
 * new session in the same slot while work remains.  With --mode implicit the TLS
 * handshake comes first (RFC 8314).  With --idle N it opens N authenticated sessions,
 * reports when all are up and holds them until a signal or --hold seconds.
 *
 * Model: T threads (--threads), each with its own epoll instance and a fixed array of
 * session slots; every session is a non-blocking state machine driven by replies.
 * The only shared state is a few atomic counters; statistics are per thread and
 * merged at the end.  Nothing here blocks except epoll_wait.
 *
 * Pipelining (RFC 2920 3.1): when the server offers PIPELINING, MAIL, RCPT and DATA go
 * in one write (DATA ends the group); the body and "." wait for the 354.  Without
 * PIPELINING every command waits for its reply.
 *
 * Bounds: every read/parse loop is capped; every wait has a deadline (--timeout); the
 * run ends when --total messages are done, when --duration has passed, or at --max-time
 * whichever comes first.  Latency: per message from MAIL sent to the 250 after "."; per
 * session from connect() to the 221 after QUIT; setup from connect() to the 235.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LG_REPLY_MAX 8192 /* RFC 5321 4.5.3.1.5: reply line at least 512; EHLO is multi-line */
#define LG_REPLY_LINES_MAX 64 /* lines in one multi-line reply */
#define LG_READS_MAX 4096 /* reads in one wake-up before we call the peer a flood */
#define LG_SESSIONS_MAX 100000
#define LG_THREADS_MAX 64
#define LG_EXPECT_MAX 8
#define LG_SAMPLES_MAX (64u * 1024 * 1024)

enum lg_phase {
	PH_CONNECT,
	PH_GREETING,
	PH_EHLO,
	PH_STARTTLS,
	PH_HANDSHAKE,
	PH_EHLO2,
	PH_AUTH,
	PH_MAIL,
	PH_RCPT,
	PH_DATA,
	PH_DOT,
	PH_QUIT,
	PH_IDLE,
	PH_IO,
	PH_TIMEOUT,
	PH_COUNT
};

static const char *lg_phase_names[PH_COUNT] = {"connect", "greeting", "ehlo", "starttls",
    "handshake", "ehlo2", "auth", "mail", "rcpt", "data", "dot", "quit", "idle", "io", "timeout"};

enum lg_state {
	ST_FREE, /* slot unused */
	ST_CONNECTING, /* waiting for connect() to finish */
	ST_HANDSHAKE, /* SSL_do_handshake in progress */
	ST_REPLIES, /* waiting for the replies in expect[] */
	ST_IDLE, /* authenticated, holding (--idle) */
};

struct lg_opts {
	const char *host;
	int port;
	int implicit;
	const char *user;
	char *password;
	int sessions;
	long msgs_per_session;
	long total;
	double duration;
	double max_time;
	double timeout;
	size_t size;
	int idle;
	double hold;
	const char *cafile;
	int insecure;
	int tls13;
	int threads;
	int json;
	int kv;
	int quickack;
	int ramp;
	const char *helo;
	const char *from;
	const char *rcpt;
	const char *sni;
};

struct lg_samples {
	uint32_t *v; /* microseconds */
	size_t n, cap;
};

struct lg_stats {
	uint64_t msgs_ok, msgs_failed, sessions_ok, sessions_failed, connects;
	uint64_t errors[PH_COUNT];
	struct lg_samples msg_lat, sess_lat, setup_lat, tls_lat, auth_lat;
};

struct lg_session {
	int fd;
	uint32_t gen;
	enum lg_state st;
	SSL *ssl;
	int tls; /* TLS is up */
	int ssl_want_write; /* last SSL call wanted to write */
	int has_pipelining, has_starttls, has_auth_plain, has_size;
	int in_setup; /* counted in the thread's setup-in-progress */
	int used; /* idle mode: a slot is used once */
	uint32_t events; /* current epoll interest */
	enum lg_phase expect[LG_EXPECT_MAX];
	int nexpect;
	int reply_code; /* code of the reply being assembled, 0 if none */
	int reply_lines;
	long msgs_done; /* in this session */
	int msg_open; /* a claimed message is in flight */
	double t_connect, t_mail, t_phase, deadline;
	char in[LG_REPLY_MAX];
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
};

struct lg_thread {
	int id;
	pthread_t tid;
	int ep;
	struct lg_session *s;
	int nsess;
	int setup_inflight;
	int established; /* idle mode */
	int active; /* sessions not FREE */
	struct lg_stats st;
};

static struct lg_opts opt;
static SSL_CTX *lg_ctx;
static char *lg_body; /* message content including the final ".\r\n" */
static size_t lg_body_len;
static char lg_auth_cmd[1024];
static struct sockaddr_in lg_addr;
static volatile sig_atomic_t lg_signalled;
static atomic_long lg_claimed;
static atomic_int lg_established;
static atomic_int lg_idle_failed;
static atomic_int lg_release; /* idle mode: time to QUIT */
static atomic_int lg_stopping;
static double lg_t0, lg_stop_at, lg_hard_stop;
static int lg_trace; /* LOADGEN_TRACE=1: one stderr line per reply */

static double
lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
lg_die(const char *msg)
{
	fprintf(stderr, "loadgen: %s\n", msg);
	exit(2);
}

static void *
lg_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		lg_die("out of memory");
	return p;
}

static void
lg_samples_add(struct lg_samples *sm, double seconds)
{
	double us = seconds * 1e6;

	if (sm->n == sm->cap) {
		size_t ncap = sm->cap ? sm->cap * 2 : 4096;
		uint32_t *nv;

		if (ncap > LG_SAMPLES_MAX)
			return; /* bounded: drop samples beyond the cap */
		nv = realloc(sm->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return;
		sm->v = nv;
		sm->cap = ncap;
	}
	sm->v[sm->n++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

static void
lg_samples_merge(struct lg_samples *dst, const struct lg_samples *src)
{
	for (size_t i = 0; i < src->n; i++)
		lg_samples_add(dst, src->v[i] / 1e6);
}

static int
lg_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile, in milliseconds; -1 when there are no samples. */
static double
lg_pct(struct lg_samples *sm, double p)
{
	size_t k;

	if (sm->n == 0)
		return -1;
	k = (size_t)(p / 100.0 * sm->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > sm->n)
		k = sm->n;
	return sm->v[k - 1] / 1000.0;
}

static double
lg_mean(const struct lg_samples *sm)
{
	double sum = 0;

	if (sm->n == 0)
		return -1;
	for (size_t i = 0; i < sm->n; i++)
		sum += sm->v[i];
	return sum / sm->n / 1000.0;
}

/* ---- work accounting ---- */

static int
lg_time_is_up(void)
{
	double now = lg_now();

	if (lg_signalled && !opt.idle)
		return 1;
	if (lg_stop_at > 0 && now >= lg_stop_at)
		return 1;
	return now >= lg_hard_stop;
}

/* Claims one message of the --total budget; 0 when there is no more work. */
static int
lg_claim_message(void)
{
	if (atomic_load(&lg_stopping) || lg_time_is_up()) {
		atomic_store(&lg_stopping, 1);
		return 0;
	}
	if (opt.total > 0 && atomic_fetch_add(&lg_claimed, 1) >= opt.total) {
		atomic_store(&lg_stopping, 1);
		return 0;
	}
	return 1;
}

/* ---- session I/O ---- */

static void
lg_out_append(struct lg_session *s, const char *p, size_t n)
{
	if (s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	if (s->out_len + n > s->out_cap) {
		size_t ncap = s->out_len + n + 1024;
		char *no = realloc(s->out, ncap);

		if (no == NULL)
			lg_die("out of memory");
		s->out = no;
		s->out_cap = ncap;
	}
	memcpy(s->out + s->out_len, p, n);
	s->out_len += n;
}

static void
lg_out_str(struct lg_session *s, const char *str)
{
	lg_out_append(s, str, strlen(str));
}

static void
lg_expect(struct lg_session *s, enum lg_phase ph)
{
	if (s->nexpect >= LG_EXPECT_MAX)
		lg_die("internal: expect queue overflow");
	s->expect[s->nexpect++] = ph;
}

static void
lg_set_events(struct lg_thread *t, struct lg_session *s)
{
	uint32_t ev = EPOLLIN;
	struct epoll_event ee;

	if (s->st == ST_CONNECTING || s->out_off < s->out_len || s->ssl_want_write)
		ev |= EPOLLOUT;
	if (ev == s->events)
		return;
	memset(&ee, 0, sizeof(ee));
	ee.events = ev;
	ee.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)(s - t->s);
	if (epoll_ctl(t->ep, EPOLL_CTL_MOD, s->fd, &ee) < 0)
		lg_die("epoll_ctl MOD failed");
	s->events = ev;
}

static void
lg_setup_done(struct lg_thread *t, struct lg_session *s)
{
	if (s->in_setup) {
		s->in_setup = 0;
		t->setup_inflight--;
	}
}

/*
 * Ends a session (ok: after 221 or in a clean shutdown); never touch s->fd after this.
 */
static void
lg_session_end(struct lg_thread *t, struct lg_session *s, int ok, enum lg_phase failed_in)
{
	double now = lg_now();

	if (!ok) {
		t->st.errors[failed_in]++;
		t->st.sessions_failed++;
		if (s->msg_open)
			t->st.msgs_failed++;
		if (opt.idle && !atomic_load(&lg_release)) {
			if (s->st == ST_IDLE)
				atomic_fetch_sub(&lg_established, 1);
			atomic_fetch_add(&lg_idle_failed, 1);
		}
	} else {
		t->st.sessions_ok++;
		if (s->msgs_done > 0)
			lg_samples_add(&t->st.sess_lat, now - s->t_connect);
	}
	if (s->st == ST_IDLE)
		t->established--;
	lg_setup_done(t, s);
	if (s->ssl != NULL) {
		/* A close_notify is polite but costs a write the server may refuse; skip it. */
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		epoll_ctl(t->ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
	s->st = ST_FREE;
	s->gen++;
	t->active--;
	/* The slot is refilled by lg_thread_fill at the top of the next loop turn. */
}

static void
lg_session_fail(struct lg_thread *t, struct lg_session *s, enum lg_phase ph)
{
	lg_session_end(t, s, 0, ph);
}

static void
lg_session_start(struct lg_thread *t, struct lg_session *s)
{
	struct epoll_event ee;
	int one = 1, fd;

	if (t->setup_inflight >= opt.ramp)
		return; /* picked up later by lg_thread_fill */
	/* The first message is claimed before connecting, so no session connects for nothing. */
	if (!opt.idle && opt.msgs_per_session > 0 && !lg_claim_message())
		return;
	s->used = 1;
	s->gen++;
	s->ssl = NULL;
	s->tls = s->ssl_want_write = 0;
	s->has_pipelining = s->has_starttls = s->has_auth_plain = s->has_size = 0;
	s->nexpect = s->reply_code = s->reply_lines = 0;
	s->msgs_done = 0;
	s->msg_open = !opt.idle && opt.msgs_per_session > 0;
	s->in_len = s->out_len = s->out_off = 0;
	s->t_connect = lg_now();
	s->deadline = s->t_connect + opt.timeout;
	s->st = ST_CONNECTING;
	s->in_setup = 1;
	t->setup_inflight++;
	t->active++;
	t->st.connects++;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	s->fd = fd;
	if (fd < 0) {
		perror("loadgen: socket");
		lg_session_fail(t, s, PH_CONNECT);
		return;
	}
	/* DESIGN 3: without TCP_NODELAY small TLS writes wait for delayed ACKs. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&lg_addr, sizeof(lg_addr)) < 0 && errno != EINPROGRESS) {
		lg_session_fail(t, s, PH_CONNECT);
		return;
	}
	memset(&ee, 0, sizeof(ee));
	ee.events = EPOLLIN | EPOLLOUT;
	ee.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)(s - t->s);
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ee) < 0)
		lg_die("epoll_ctl ADD failed");
	s->events = ee.events;
}

/* Returns 0 when the output is flushed or blocked, -1 on error. */
static int
lg_flush(struct lg_session *s)
{
	for (int i = 0; i < LG_READS_MAX && s->out_off < s->out_len; i++) {
		size_t n = s->out_len - s->out_off;
		ssize_t w;

		if (s->tls) {
			size_t done = 0;
			int r = SSL_write_ex(s->ssl, s->out + s->out_off, n, &done);

			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);

				if (e == SSL_ERROR_WANT_WRITE) {
					s->ssl_want_write = 1;
					return 0;
				}
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			s->ssl_want_write = 0;
			s->out_off += done;
		} else {
			w = send(s->fd, s->out + s->out_off, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return 0;
				return -1;
			}
			s->out_off += (size_t)w;
		}
	}
	if (s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	return 0;
}

/* Reads what is available: >0 bytes read, 0 would block, -1 error or EOF. */
static int
lg_read(struct lg_session *s)
{
	size_t room = sizeof(s->in) - s->in_len;

	if (room == 0)
		return -1; /* a reply longer than LG_REPLY_MAX */
	if (opt.quickack) {
		/*
		 * Diagnostic only: ACK at once, which hides a server's Nagle stall (a small
		 * reply queued behind the unacknowledged TLS 1.3 session tickets).
		 */
		int one = 1;

		setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	}
	if (s->tls) {
		size_t got = 0;
		int r = SSL_read_ex(s->ssl, s->in + s->in_len, room, &got);

		if (r <= 0) {
			int e = SSL_get_error(s->ssl, r);

			if (e == SSL_ERROR_WANT_READ)
				return 0;
			if (e == SSL_ERROR_WANT_WRITE) {
				s->ssl_want_write = 1;
				return 0;
			}
			return -1;
		}
		s->in_len += got;
		return 1;
	} else {
		ssize_t n = recv(s->fd, s->in + s->in_len, room, 0);

		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
		if (n == 0)
			return -1;
		s->in_len += (size_t)n;
		return 1;
	}
}

static void
lg_send_ehlo(struct lg_session *s, enum lg_phase ph)
{
	char line[300];

	snprintf(line, sizeof(line), "EHLO %s\r\n", opt.helo);
	lg_out_str(s, line);
	lg_expect(s, ph);
}

/* Starts one message transaction; the MAIL..DATA group is pipelined when offered. */
static void
lg_send_mail(struct lg_session *s)
{
	char line[600];

	s->t_mail = lg_now();
	s->msg_open = 1;
	/* RFC 1870: the SIZE parameter only where the server offers the extension. */
	if (s->has_size)
		snprintf(line, sizeof(line), "MAIL FROM:<%s> SIZE=%zu\r\n", opt.from, opt.size);
	else
		snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n", opt.from);
	lg_out_str(s, line);
	lg_expect(s, PH_MAIL);
	if (s->has_pipelining) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>\r\nDATA\r\n", opt.rcpt);
		lg_out_str(s, line);
		lg_expect(s, PH_RCPT);
		lg_expect(s, PH_DATA);
	}
}

static void
lg_send_quit(struct lg_session *s)
{
	lg_out_str(s, "QUIT\r\n");
	lg_expect(s, PH_QUIT);
}

static void
lg_next_message_or_quit(struct lg_session *s)
{
	if (s->msgs_done < opt.msgs_per_session && lg_claim_message())
		lg_send_mail(s);
	else
		lg_send_quit(s);
}

/* After the handshake: implicit TLS waits for the greeting; STARTTLS re-issues EHLO. */
static void
lg_after_handshake(struct lg_thread *t, struct lg_session *s)
{
	lg_samples_add(&t->st.tls_lat, lg_now() - s->t_phase);
	s->tls = 1;
	s->st = ST_REPLIES;
	if (opt.implicit)
		lg_expect(s, PH_GREETING);
	else
		lg_send_ehlo(s, PH_EHLO2);
}

static int
lg_start_tls(struct lg_session *s)
{
	s->ssl = SSL_new(lg_ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
		return -1;
	SSL_set_connect_state(s->ssl);
	if (opt.sni != NULL) {
		SSL_set_tlsext_host_name(s->ssl, opt.sni);
		if (!opt.insecure)
			SSL_set1_host(s->ssl, opt.sni);
	}
	s->st = ST_HANDSHAKE;
	s->t_phase = lg_now();
	return 0;
}

/* Returns 1 done, 0 in progress, -1 failed. */
static int
lg_handshake(struct lg_session *s)
{
	int r = SSL_do_handshake(s->ssl);

	if (r == 1) {
		s->ssl_want_write = 0;
		return 1;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->ssl_want_write = 0;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		s->ssl_want_write = 1;
		return 0;
	default:
		if (getenv("LOADGEN_DEBUG") != NULL)
			ERR_print_errors_fp(stderr);
		return -1;
	}
}

static void
lg_ehlo_line(struct lg_session *s, const char *p, size_t n)
{
	/* p points past "250-" / "250 "; keywords are case-insensitive (RFC 5321 4.1.1.1). */
	if (n >= 10 && strncasecmp(p, "PIPELINING", 10) == 0)
		s->has_pipelining = 1;
	else if (n >= 8 && strncasecmp(p, "STARTTLS", 8) == 0)
		s->has_starttls = 1;
	else if (n >= 4 && strncasecmp(p, "SIZE", 4) == 0 && (n == 4 || p[4] == ' '))
		s->has_size = 1;
	else if (n >= 5 && strncasecmp(p, "AUTH", 4) == 0 && (p[4] == ' ' || p[4] == '=')) {
		for (size_t i = 5; i + 5 <= n; i++)
			if (strncasecmp(p + i, "PLAIN", 5) == 0 &&
			    (p[i - 1] == ' ' || p[i - 1] == '=') && (i + 5 == n || p[i + 5] == ' '))
				s->has_auth_plain = 1;
	}
}

/*
 * One complete reply for the head of expect[]; returns 0 to go on, -1 with *ph_r set
 * when the session must end as failed, 1 when the session ended cleanly.
 */
static int
lg_on_reply(struct lg_thread *t, struct lg_session *s, int code, enum lg_phase *ph_r)
{
	enum lg_phase ph;
	double now = lg_now();

	if (s->nexpect == 0) {
		*ph_r = PH_IO; /* unsolicited reply, e.g. 421 on idle */
		return -1;
	}
	ph = s->expect[0];
	memmove(s->expect, s->expect + 1, (size_t)(s->nexpect - 1) * sizeof(s->expect[0]));
	s->nexpect--;
	*ph_r = ph;
	s->deadline = now + opt.timeout;
	if (lg_trace)
		fprintf(stderr, "trace %u.%u %.3f ms %s %d\n", (unsigned)t->id,
		    (unsigned)(s - t->s), (now - s->t_connect) * 1e3, lg_phase_names[ph], code);
	switch (ph) {
	case PH_GREETING:
		if (code != 220)
			return -1;
		lg_send_ehlo(s, s->tls ? PH_EHLO2 : PH_EHLO);
		return 0;
	case PH_EHLO:
		/* Only before STARTTLS; with implicit TLS the first EHLO is PH_EHLO2. */
		if (code != 250)
			return -1;
		if (!s->has_starttls) {
			*ph_r = PH_STARTTLS;
			return -1;
		}
		lg_out_str(s, "STARTTLS\r\n");
		lg_expect(s, PH_STARTTLS);
		return 0;
	case PH_EHLO2:
		if (code != 250)
			return -1;
		if (!s->has_auth_plain) {
			*ph_r = PH_AUTH;
			return -1;
		}
		lg_out_str(s, lg_auth_cmd);
		lg_expect(s, PH_AUTH);
		s->t_phase = now;
		return 0;
	case PH_STARTTLS:
		if (code != 220)
			return -1;
		/* RFC 3207 5: bytes after the 220 must not be trusted (command injection). */
		if (s->in_len != 0) {
			*ph_r = PH_STARTTLS;
			return -1;
		}
		/* RFC 3207 4.2: forget what was learnt before TLS. */
		s->has_pipelining = s->has_starttls = s->has_auth_plain = s->has_size = 0;
		return lg_start_tls(s) < 0 ? (*ph_r = PH_HANDSHAKE, -1) : 0;
	case PH_AUTH:
		if (code != 235)
			return -1;
		lg_samples_add(&t->st.setup_lat, now - s->t_connect);
		lg_samples_add(&t->st.auth_lat, now - s->t_phase);
		lg_setup_done(t, s);
		if (opt.idle) {
			s->st = ST_IDLE;
			t->established++;
			atomic_fetch_add(&lg_established, 1);
			return 0;
		}
		/* The first message was claimed in lg_session_start. */
		if (s->msg_open)
			lg_send_mail(s);
		else
			lg_send_quit(s);
		return 0;
	case PH_MAIL:
		if (code != 250)
			return -1;
		if (!s->has_pipelining) {
			char line[600];

			snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", opt.rcpt);
			lg_out_str(s, line);
			lg_expect(s, PH_RCPT);
		}
		return 0;
	case PH_RCPT:
		if (code != 250 && code != 251)
			return -1;
		if (!s->has_pipelining) {
			lg_out_str(s, "DATA\r\n");
			lg_expect(s, PH_DATA);
		}
		return 0;
	case PH_DATA:
		if (code != 354)
			return -1;
		lg_out_append(s, lg_body, lg_body_len);
		lg_expect(s, PH_DOT);
		return 0;
	case PH_DOT:
		if (code != 250)
			return -1;
		s->msg_open = 0;
		s->msgs_done++;
		t->st.msgs_ok++;
		lg_samples_add(&t->st.msg_lat, now - s->t_mail);
		lg_next_message_or_quit(s);
		return 0;
	case PH_QUIT:
		/* Any 2xx is fine for QUIT; the server closes next. */
		if (code / 100 != 2)
			return -1;
		return 1;
	default:
		return -1;
	}
}

/*
 * Splits s->in into reply lines and hands every complete reply to lg_on_reply.
 * Returns 0 to go on, 1 session ended (slot may be reused), -1 with *ph_r on failure.
 */
static int
lg_parse(struct lg_thread *t, struct lg_session *s, enum lg_phase *ph_r)
{
	size_t off = 0;
	int rc = 0;

	while (off < s->in_len && rc == 0) {
		char *p = s->in + off, *nl = memchr(p, '\n', s->in_len - off);
		size_t n;
		int code, last;

		if (nl == NULL)
			break;
		n = (size_t)(nl - p);
		off += n + 1;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		/* RFC 5321 4.2: three digits, then SP (last line) or '-' (more follow). */
		if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
		    p[2] > '9' || (n > 3 && p[3] != ' ' && p[3] != '-')) {
			*ph_r = s->nexpect ? s->expect[0] : PH_IO;
			return -1;
		}
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		last = n == 3 || p[3] == ' ';
		if (s->reply_code != 0 && code != s->reply_code) {
			*ph_r = s->nexpect ? s->expect[0] : PH_IO;
			return -1;
		}
		s->reply_code = code;
		if (++s->reply_lines > LG_REPLY_LINES_MAX) {
			*ph_r = s->nexpect ? s->expect[0] : PH_IO;
			return -1;
		}
		if (code == 250 && s->reply_lines > 1 && n > 4 && s->nexpect > 0 &&
		    (s->expect[0] == PH_EHLO || s->expect[0] == PH_EHLO2))
			lg_ehlo_line(s, p + 4, n - 4);
		if (!last)
			continue;
		s->reply_code = 0;
		s->reply_lines = 0;
		if (s->nexpect > 0 && s->expect[0] == PH_STARTTLS) {
			/* Drop the consumed bytes first so the injection check sees the rest. */
			memmove(s->in, s->in + off, s->in_len - off);
			s->in_len -= off;
			off = 0;
		}
		rc = lg_on_reply(t, s, code, ph_r);
		if (s->st == ST_HANDSHAKE)
			break;
	}
	if (off > 0) {
		memmove(s->in, s->in + off, s->in_len - off);
		s->in_len -= off;
	}
	return rc;
}

/* Drives one session after an event (or a timer tick); never blocks. */
static void
lg_session_run(struct lg_thread *t, struct lg_session *s, uint32_t events)
{
	enum lg_phase ph = PH_IO;
	int r;

	if (s->st == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			lg_session_fail(t, s, PH_CONNECT);
			return;
		}
		s->deadline = lg_now() + opt.timeout;
		if (opt.implicit) {
			if (lg_start_tls(s) < 0) {
				lg_session_fail(t, s, PH_HANDSHAKE);
				return;
			}
		} else {
			s->st = ST_REPLIES;
			lg_expect(s, PH_GREETING);
		}
	}
	for (int round = 0; round < LG_READS_MAX; round++) {
		if (s->st == ST_HANDSHAKE) {
			r = lg_handshake(s);
			if (r < 0) {
				lg_session_fail(t, s, PH_HANDSHAKE);
				return;
			}
			if (r == 0)
				break;
			lg_after_handshake(t, s);
		}
		if (lg_flush(s) < 0) {
			lg_session_fail(t, s, s->nexpect ? s->expect[0] : PH_IO);
			return;
		}
		r = lg_read(s);
		if (r < 0) {
			lg_session_fail(
			    t, s, s->st == ST_IDLE ? PH_IDLE : (s->nexpect ? s->expect[0] : PH_IO));
			return;
		}
		if (r == 0)
			break;
		r = lg_parse(t, s, &ph);
		if (r < 0) {
			lg_session_fail(t, s, ph);
			return;
		}
		if (r > 0) {
			lg_session_end(t, s, 1, PH_QUIT);
			return;
		}
		if (round == LG_READS_MAX - 1) {
			lg_session_fail(t, s, PH_IO);
			return;
		}
	}
	if (s->st != ST_HANDSHAKE && lg_flush(s) < 0) {
		lg_session_fail(t, s, s->nexpect ? s->expect[0] : PH_IO);
		return;
	}
	lg_set_events(t, s);
}

/* Starts sessions in free slots while the ramp limit and the work budget allow. */
static void
lg_thread_fill(struct lg_thread *t)
{
	for (int i = 0; i < t->nsess && t->setup_inflight < opt.ramp; i++) {
		struct lg_session *s = &t->s[i];

		if (s->st != ST_FREE)
			continue;
		if (opt.idle && s->used)
			continue;
		if (!opt.idle &&
		    (atomic_load(&lg_stopping) || lg_time_is_up() ||
		        (opt.total > 0 && atomic_load(&lg_claimed) >= opt.total)))
			return;
		lg_session_start(t, s);
		if (s->st == ST_FREE && !opt.idle)
			return; /* no more work */
	}
}

static void
lg_thread_timers(struct lg_thread *t, double now)
{
	for (int i = 0; i < t->nsess; i++) {
		struct lg_session *s = &t->s[i];

		if (s->st == ST_FREE || s->st == ST_IDLE)
			continue;
		if (now > s->deadline)
			lg_session_fail(t, s, PH_TIMEOUT);
	}
}

static void *
lg_thread_main(void *arg)
{
	struct lg_thread *t = arg;
	struct epoll_event evs[256];
	double last_timers = 0;
	int idle_quit_sent = 0, idle_started = 0;

	/* Bounded: lg_hard_stop plus one timeout ends the loop whatever the server does. */
	for (;;) {
		double now = lg_now();
		int n;

		if (now > lg_hard_stop + opt.timeout + 1) {
			for (int i = 0; i < t->nsess; i++)
				if (t->s[i].st != ST_FREE)
					lg_session_fail(t, &t->s[i], PH_TIMEOUT);
			break;
		}
		if (opt.idle) {
			int release = atomic_load(&lg_release);

			if (!idle_started || (!release && t->setup_inflight < opt.ramp)) {
				lg_thread_fill(t);
				idle_started = 1;
			}
			if (release && !idle_quit_sent) {
				for (int i = 0; i < t->nsess; i++) {
					struct lg_session *s = &t->s[i];

					if (s->st != ST_IDLE)
						continue;
					s->st = ST_REPLIES;
					s->deadline = now + opt.timeout;
					t->established--;
					lg_send_quit(s);
					lg_session_run(t, s, 0);
				}
				idle_quit_sent = 1;
			}
			if (release && t->active == 0)
				break;
		} else {
			if (t->active < t->nsess)
				lg_thread_fill(t);
			if (t->active == 0)
				break;
		}
		n = epoll_wait(t->ep, evs, 256, 50);
		if (n < 0 && errno != EINTR)
			lg_die("epoll_wait failed");
		for (int i = 0; i < n; i++) {
			uint32_t idx = (uint32_t)evs[i].data.u64;
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			struct lg_session *s;

			if (idx >= (uint32_t)t->nsess)
				continue;
			s = &t->s[idx];
			if (s->gen != gen || s->st == ST_FREE)
				continue; /* stale event for a closed connection */
			lg_session_run(t, s, evs[i].events);
		}
		now = lg_now();
		if (now - last_timers > 0.1) {
			lg_thread_timers(t, now);
			last_timers = now;
		}
	}
	return NULL;
}

/* ---- setup ---- */

static void
lg_on_signal(int sig)
{
	(void)sig;
	lg_signalled = 1;
}

static char *
lg_read_password_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	size_t n;

	if (f == NULL)
		lg_die("cannot open --password-file");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return strdup(buf);
}

static void
lg_build_auth(void)
{
	unsigned char raw[600];
	size_t ul = strlen(opt.user), pl = strlen(opt.password), n;
	char b64[900];
	int len;

	if (ul + pl + 2 > sizeof(raw))
		lg_die("user or password too long");
	/* RFC 4616: authzid NUL authcid NUL passwd; empty authzid. */
	raw[0] = '\0';
	memcpy(raw + 1, opt.user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, opt.password, pl);
	n = ul + pl + 2;
	len = EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	explicit_bzero(raw, sizeof(raw));
	if (len < 0)
		lg_die("base64 failed");
	if ((size_t)snprintf(lg_auth_cmd, sizeof(lg_auth_cmd), "AUTH PLAIN %s\r\n", b64) >=
	    sizeof(lg_auth_cmd))
		lg_die("AUTH line too long");
	explicit_bzero(b64, sizeof(b64));
}

/* A message of exactly opt.size bytes (headers + body, CRLF lines), then ".\r\n". */
static void
lg_build_body(void)
{
	char hdr[1024];
	size_t hl, pos;
	int n;

	n = snprintf(hdr, sizeof(hdr),
	    "From: <%s>\r\nTo: <%s>\r\nSubject: loadgen benchmark message\r\n"
	    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <loadgen@bench.test>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	    opt.from, opt.rcpt);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		lg_die("header too long");
	hl = (size_t)n;
	if (opt.size < hl + 2)
		opt.size = hl + 2;
	lg_body = lg_xmalloc(opt.size + 3);
	memcpy(lg_body, hdr, hl);
	pos = hl;
	/* Body lines of up to 76 'x' + CRLF; never a leading '.', so no dot-stuffing. */
	while (pos < opt.size) {
		size_t left = opt.size - pos, line = left > 78 ? 78 : left;

		if (left - line == 1) /* never leave a lone byte for the last line */
			line--;
		memset(lg_body + pos, 'x', line - 2);
		lg_body[pos + line - 2] = '\r';
		lg_body[pos + line - 1] = '\n';
		pos += line;
	}
	memcpy(lg_body + pos, ".\r\n", 3);
	lg_body_len = pos + 3;
}

static void
lg_init_tls(void)
{
	lg_ctx = SSL_CTX_new(TLS_client_method());
	if (lg_ctx == NULL)
		lg_die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(lg_ctx, opt.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_mode(
	    lg_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Every session is a full handshake: the benchmark measures that cost. */
	SSL_CTX_set_session_cache_mode(lg_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(lg_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (opt.insecure) {
		SSL_CTX_set_verify(lg_ctx, SSL_VERIFY_NONE, NULL);
	} else {
		if (opt.cafile == NULL)
			lg_die("--cafile FILE or --insecure is required");
		if (SSL_CTX_load_verify_locations(lg_ctx, opt.cafile, NULL) != 1)
			lg_die("cannot load --cafile");
		SSL_CTX_set_verify(lg_ctx, SSL_VERIFY_PEER, NULL);
	}
}

static void
lg_usage(FILE *f)
{
	fprintf(f,
	    "usage: loadgen --port N [--host 127.0.0.1] [--mode starttls|implicit]\n"
	    "         --user U (--password P | --password-file F) (--cafile F | --insecure)\n"
	    "         [--sessions N] [--messages-per-session M] [--total T | --duration S]\n"
	    "         [--size BYTES] [--idle N [--hold S]] [--tls13] [--threads N] [--ramp N]\n"
	    "         [--timeout S] [--max-time S] [--sni NAME] [--from A] [--to B] [--json|--kv]\n"
	    "         [--quickack]\n");
}

static void
lg_parse_args(int argc, char **argv)
{
	enum {
		O_HOST = 256,
		O_PORT,
		O_MODE,
		O_USER,
		O_PASS,
		O_PASSF,
		O_SESS,
		O_MPS,
		O_TOTAL,
		O_DUR,
		O_SIZE,
		O_IDLE,
		O_HOLD,
		O_CAFILE,
		O_INSEC,
		O_TLS13,
		O_THREADS,
		O_JSON,
		O_KV,
		O_RAMP,
		O_TIMEOUT,
		O_MAXT,
		O_SNI,
		O_FROM,
		O_TO,
		O_QUICKACK,
		O_HELP
	};
	static const struct option lo[] = {{"host", required_argument, NULL, O_HOST},
	    {"port", required_argument, NULL, O_PORT}, {"mode", required_argument, NULL, O_MODE},
	    {"user", required_argument, NULL, O_USER},
	    {"password", required_argument, NULL, O_PASS},
	    {"password-file", required_argument, NULL, O_PASSF},
	    {"sessions", required_argument, NULL, O_SESS},
	    {"messages-per-session", required_argument, NULL, O_MPS},
	    {"total", required_argument, NULL, O_TOTAL},
	    {"duration", required_argument, NULL, O_DUR}, {"size", required_argument, NULL, O_SIZE},
	    {"idle", required_argument, NULL, O_IDLE}, {"hold", required_argument, NULL, O_HOLD},
	    {"cafile", required_argument, NULL, O_CAFILE}, {"insecure", no_argument, NULL, O_INSEC},
	    {"tls13", no_argument, NULL, O_TLS13}, {"threads", required_argument, NULL, O_THREADS},
	    {"json", no_argument, NULL, O_JSON}, {"kv", no_argument, NULL, O_KV},
	    {"ramp", required_argument, NULL, O_RAMP},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"max-time", required_argument, NULL, O_MAXT}, {"sni", required_argument, NULL, O_SNI},
	    {"from", required_argument, NULL, O_FROM}, {"to", required_argument, NULL, O_TO},
	    {"quickack", no_argument, NULL, O_QUICKACK}, {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0}};
	int ch;

	opt.host = "127.0.0.1";
	opt.sessions = 16;
	opt.msgs_per_session = 1;
	opt.size = 4096;
	opt.timeout = 30;
	opt.max_time = 600;
	opt.threads = 1;
	opt.ramp = 64;
	opt.helo = "loadgen.bench.test";
	opt.from = "bench@example.test";
	opt.rcpt = "sink@example.test";
	opt.hold = -1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case O_HOST:
			opt.host = optarg;
			break;
		case O_PORT:
			opt.port = atoi(optarg);
			break;
		case O_MODE:
			if (strcmp(optarg, "implicit") == 0)
				opt.implicit = 1;
			else if (strcmp(optarg, "starttls") == 0)
				opt.implicit = 0;
			else
				lg_die("--mode is starttls or implicit");
			break;
		case O_USER:
			opt.user = optarg;
			break;
		case O_PASS:
			opt.password = strdup(optarg);
			break;
		case O_PASSF:
			opt.password = lg_read_password_file(optarg);
			break;
		case O_SESS:
			opt.sessions = atoi(optarg);
			break;
		case O_MPS:
			opt.msgs_per_session = atol(optarg);
			break;
		case O_TOTAL:
			opt.total = atol(optarg);
			break;
		case O_DUR:
			opt.duration = atof(optarg);
			break;
		case O_SIZE:
			opt.size = (size_t)atol(optarg);
			break;
		case O_IDLE:
			opt.idle = atoi(optarg);
			break;
		case O_HOLD:
			opt.hold = atof(optarg);
			break;
		case O_CAFILE:
			opt.cafile = optarg;
			break;
		case O_INSEC:
			opt.insecure = 1;
			break;
		case O_TLS13:
			opt.tls13 = 1;
			break;
		case O_THREADS:
			opt.threads = atoi(optarg);
			break;
		case O_JSON:
			opt.json = 1;
			break;
		case O_KV:
			opt.kv = 1;
			break;
		case O_RAMP:
			opt.ramp = atoi(optarg);
			break;
		case O_TIMEOUT:
			opt.timeout = atof(optarg);
			break;
		case O_MAXT:
			opt.max_time = atof(optarg);
			break;
		case O_SNI:
			opt.sni = optarg;
			break;
		case O_FROM:
			opt.from = optarg;
			break;
		case O_TO:
			opt.rcpt = optarg;
			break;
		case O_QUICKACK:
			opt.quickack = 1;
			break;
		case O_HELP:
			lg_usage(stdout);
			exit(0);
		default:
			lg_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.user == NULL ||
	    opt.password == NULL) {
		lg_usage(stderr);
		exit(2);
	}
	if (opt.idle > 0)
		opt.sessions = opt.idle;
	if (opt.sessions < 1 || opt.sessions > LG_SESSIONS_MAX)
		lg_die("--sessions out of range");
	if (opt.threads < 1 || opt.threads > LG_THREADS_MAX)
		lg_die("--threads out of range");
	if (opt.threads > opt.sessions)
		opt.threads = opt.sessions;
	if (opt.msgs_per_session < 0 || opt.ramp < 1 || opt.timeout <= 0 || opt.max_time <= 0)
		lg_die("bad --messages-per-session, --ramp, --timeout or --max-time");
	if (opt.size > 64u * 1024 * 1024)
		lg_die("--size too large");
	if (!opt.idle && opt.total <= 0 && opt.duration <= 0)
		opt.total =
		    (long)opt.sessions * (opt.msgs_per_session > 0 ? opt.msgs_per_session : 1);
	if (strpbrk(opt.from, "\r\n<>") || strpbrk(opt.rcpt, "\r\n<>") ||
	    (opt.sni && strpbrk(opt.sni, "\r\n")))
		lg_die("bad --from, --to or --sni");
	/* Threads split the ramp limit. */
	opt.ramp = opt.ramp / opt.threads > 0 ? opt.ramp / opt.threads : 1;
}

static void
lg_print(struct lg_stats *tot, double elapsed, double cpu)
{
	double rate = elapsed > 0 ? tot->msgs_ok / elapsed : 0;
	double srate = elapsed > 0 ? tot->sessions_ok / elapsed : 0;
	uint64_t nerr = 0;

	for (int i = 0; i < PH_COUNT; i++)
		nerr += tot->errors[i];
	if (opt.json) {
		printf("{\"mode\":\"%s\",\"sessions\":%d,\"messages_per_session\":%ld,"
		       "\"size\":%zu,\"threads\":%d,\"idle\":%d,\"elapsed_s\":%.3f,"
		       "\"messages_ok\":%llu,\"messages_failed\":%llu,\"messages_per_s\":%.1f,"
		       "\"sessions_ok\":%llu,\"sessions_failed\":%llu,\"sessions_per_s\":%.1f,"
		       "\"connects\":%llu,",
		    opt.implicit ? "implicit" : "starttls", opt.sessions, opt.msgs_per_session,
		    opt.size, opt.threads, opt.idle, elapsed, (unsigned long long)tot->msgs_ok,
		    (unsigned long long)tot->msgs_failed, rate,
		    (unsigned long long)tot->sessions_ok, (unsigned long long)tot->sessions_failed,
		    srate, (unsigned long long)tot->connects);
		printf("\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"mean\":%.3f,\"n\":%zu},",
		    lg_pct(&tot->msg_lat, 50), lg_pct(&tot->msg_lat, 99), lg_mean(&tot->msg_lat),
		    tot->msg_lat.n);
		printf(
		    "\"session_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"mean\":%.3f,\"n\":%zu},",
		    lg_pct(&tot->sess_lat, 50), lg_pct(&tot->sess_lat, 99), lg_mean(&tot->sess_lat),
		    tot->sess_lat.n);
		printf("\"setup_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"mean\":%.3f,\"n\":%zu},",
		    lg_pct(&tot->setup_lat, 50), lg_pct(&tot->setup_lat, 99),
		    lg_mean(&tot->setup_lat), tot->setup_lat.n);
		printf("\"handshake_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f},"
		       "\"auth_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f},",
		    lg_pct(&tot->tls_lat, 50), lg_pct(&tot->tls_lat, 99),
		    lg_pct(&tot->auth_lat, 50), lg_pct(&tot->auth_lat, 99));
		printf("\"client_cpu_s\":%.3f,\"errors_total\":%llu,\"errors\":{", cpu,
		    (unsigned long long)nerr);
		for (int i = 0, first = 1; i < PH_COUNT; i++) {
			if (tot->errors[i] == 0)
				continue;
			printf("%s\"%s\":%llu", first ? "" : ",", lg_phase_names[i],
			    (unsigned long long)tot->errors[i]);
			first = 0;
		}
		printf("}}\n");
	} else if (opt.kv) {
		printf("elapsed_s=%.3f\nmessages_ok=%llu\nmessages_failed=%llu\n"
		       "messages_per_s=%.1f\nsessions_ok=%llu\nsessions_per_s=%.1f\n"
		       "lat_p50_ms=%.3f\nlat_p99_ms=%.3f\nsess_p50_ms=%.3f\nsess_p99_ms=%.3f\n"
		       "setup_p50_ms=%.3f\nsetup_p99_ms=%.3f\nclient_cpu_s=%.3f\nerrors=%llu\n",
		    elapsed, (unsigned long long)tot->msgs_ok, (unsigned long long)tot->msgs_failed,
		    rate, (unsigned long long)tot->sessions_ok, srate, lg_pct(&tot->msg_lat, 50),
		    lg_pct(&tot->msg_lat, 99), lg_pct(&tot->sess_lat, 50),
		    lg_pct(&tot->sess_lat, 99), lg_pct(&tot->setup_lat, 50),
		    lg_pct(&tot->setup_lat, 99), cpu, (unsigned long long)nerr);
		printf("tls_p50_ms=%.3f\ntls_p99_ms=%.3f\nauth_p50_ms=%.3f\nauth_p99_ms=%.3f\n",
		    lg_pct(&tot->tls_lat, 50), lg_pct(&tot->tls_lat, 99),
		    lg_pct(&tot->auth_lat, 50), lg_pct(&tot->auth_lat, 99));
		for (int i = 0; i < PH_COUNT; i++)
			if (tot->errors[i] != 0)
				printf("errors_%s=%llu\n", lg_phase_names[i],
				    (unsigned long long)tot->errors[i]);
	} else {
		printf("sessions %d (x%ld msgs), threads %d, %s, %zu-byte messages\n", opt.sessions,
		    opt.msgs_per_session, opt.threads, opt.implicit ? "implicit TLS" : "STARTTLS",
		    opt.size);
		printf("messages: %llu ok, %llu failed in %.2f s = %.1f messages/s\n",
		    (unsigned long long)tot->msgs_ok, (unsigned long long)tot->msgs_failed, elapsed,
		    rate);
		printf("sessions: %llu ok, %llu failed = %.1f sessions/s\n",
		    (unsigned long long)tot->sessions_ok, (unsigned long long)tot->sessions_failed,
		    srate);
		printf("latency message (MAIL..250): p50 %.2f ms, p99 %.2f ms\n",
		    lg_pct(&tot->msg_lat, 50), lg_pct(&tot->msg_lat, 99));
		printf("latency session (connect..221): p50 %.2f ms, p99 %.2f ms\n",
		    lg_pct(&tot->sess_lat, 50), lg_pct(&tot->sess_lat, 99));
		printf("latency setup (connect..235): p50 %.2f ms, p99 %.2f ms\n",
		    lg_pct(&tot->setup_lat, 50), lg_pct(&tot->setup_lat, 99));
		printf(
		    "  of which TLS handshake: p50 %.2f ms, p99 %.2f ms; AUTH..235: p50 %.2f ms, "
		    "p99 %.2f ms\n",
		    lg_pct(&tot->tls_lat, 50), lg_pct(&tot->tls_lat, 99),
		    lg_pct(&tot->auth_lat, 50), lg_pct(&tot->auth_lat, 99));
		printf("loadgen CPU: %.2f s\nerrors: %llu", cpu, (unsigned long long)nerr);
		for (int i = 0; i < PH_COUNT; i++)
			if (tot->errors[i] != 0)
				printf(" %s=%llu", lg_phase_names[i],
				    (unsigned long long)tot->errors[i]);
		printf("\n");
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct lg_thread *th;
	struct lg_stats tot;
	struct sigaction sa;
	struct rusage ru;
	double elapsed, cpu;
	int idle_reported = 0;

	lg_parse_args(argc, argv);
	lg_trace = getenv("LOADGEN_TRACE") != NULL;
	memset(&lg_addr, 0, sizeof(lg_addr));
	lg_addr.sin_family = AF_INET;
	lg_addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &lg_addr.sin_addr) != 1)
		lg_die("--host must be an IPv4 address");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = lg_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lg_init_tls();
	lg_build_auth();
	explicit_bzero(opt.password, strlen(opt.password));
	lg_build_body();

	lg_t0 = lg_now();
	lg_hard_stop = lg_t0 + opt.max_time;
	if (opt.duration > 0)
		lg_stop_at = lg_t0 + opt.duration;
	th = calloc((size_t)opt.threads, sizeof(*th));
	if (th == NULL)
		lg_die("out of memory");
	for (int i = 0; i < opt.threads; i++) {
		struct lg_thread *t = &th[i];

		t->id = i;
		t->nsess = opt.sessions / opt.threads + (i < opt.sessions % opt.threads);
		t->s = calloc((size_t)t->nsess, sizeof(*t->s));
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		if (t->s == NULL || t->ep < 0)
			lg_die("cannot set up thread");
		for (int j = 0; j < t->nsess; j++)
			t->s[j].fd = -1;
	}
	for (int i = 0; i < opt.threads; i++)
		if (pthread_create(&th[i].tid, NULL, lg_thread_main, &th[i]) != 0)
			lg_die("pthread_create failed");

	if (opt.idle) {
		/* Report once every session is up (or failed), then hold. Bounded by max_time. */
		double held_since = 0;

		for (;;) {
			int est = atomic_load(&lg_established), fail = atomic_load(&lg_idle_failed);
			double now = lg_now();

			if (!idle_reported && est + fail >= opt.idle) {
				fprintf(stderr,
				    "loadgen: idle: %d sessions established, %d failed in %.2f s\n",
				    est, fail, now - lg_t0);
				if (!opt.json) {
					printf("established %d failed %d\n", est, fail);
					fflush(stdout);
				}
				idle_reported = 1;
				held_since = now;
			}
			if (lg_signalled || now >= lg_hard_stop ||
			    (idle_reported && opt.hold >= 0 && now - held_since >= opt.hold))
				break;
			usleep(20000);
		}
		atomic_store(&lg_release, 1);
	}
	for (int i = 0; i < opt.threads; i++)
		pthread_join(th[i].tid, NULL);
	elapsed = lg_now() - lg_t0;
	getrusage(RUSAGE_SELF, &ru);
	cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	    ru.ru_stime.tv_usec / 1e6;

	memset(&tot, 0, sizeof(tot));
	for (int i = 0; i < opt.threads; i++) {
		struct lg_stats *s = &th[i].st;

		tot.msgs_ok += s->msgs_ok;
		tot.msgs_failed += s->msgs_failed;
		tot.sessions_ok += s->sessions_ok;
		tot.sessions_failed += s->sessions_failed;
		tot.connects += s->connects;
		for (int j = 0; j < PH_COUNT; j++)
			tot.errors[j] += s->errors[j];
		lg_samples_merge(&tot.msg_lat, &s->msg_lat);
		lg_samples_merge(&tot.sess_lat, &s->sess_lat);
		lg_samples_merge(&tot.setup_lat, &s->setup_lat);
		lg_samples_merge(&tot.tls_lat, &s->tls_lat);
		lg_samples_merge(&tot.auth_lat, &s->auth_lat);
	}
	qsort(tot.msg_lat.v, tot.msg_lat.n, sizeof(uint32_t), lg_cmp_u32);
	qsort(tot.sess_lat.v, tot.sess_lat.n, sizeof(uint32_t), lg_cmp_u32);
	qsort(tot.setup_lat.v, tot.setup_lat.n, sizeof(uint32_t), lg_cmp_u32);
	qsort(tot.tls_lat.v, tot.tls_lat.n, sizeof(uint32_t), lg_cmp_u32);
	qsort(tot.auth_lat.v, tot.auth_lat.n, sizeof(uint32_t), lg_cmp_u32);
	lg_print(&tot, elapsed, cpu);
	if (opt.idle)
		return atomic_load(&lg_established) == opt.idle ? 0 : 1;
	return tot.msgs_ok > 0 && tot.msgs_failed == 0 ? 0 : 1;
}

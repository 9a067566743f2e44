/*
 * dovecot_auth: client side of Dovecot's auth-client protocol (v1.x).
 *
 *   C: VERSION 1 2 / CPID <pid>          S: VERSION 1 x / MECH ... / SPID /
 *                                           CUID / COOKIE / DONE
 *   C: AUTH <id> PLAIN service=smtp secured no-penalty session=<s> resp=<base64>
 *   S: OK <id> user=... | FAIL <id> [code=temp_fail] [user=...] | CONT ...
 *
 * Every line ends in LF; fields are separated by TAB and tab-escaped
 * (\001 escapes, see dovecot_auth_escape). resp= goes last: Dovecot ignores
 * anything after it.
 *
 * Design: blocking I/O on authdb's worker threads, one request at a time per
 * connection, connections pooled (an idle stack under lock). A worker takes
 * a connection for one request and gives it back; so the number of
 * connections never exceeds the number of workers, and no reader thread or
 * request-id demultiplexing is needed. Every wait is bounded by poll() with
 * a deadline of DOVECOT_AUTH_TIMEOUT_MS for the whole request. Any error
 * (EOF, timeout, malformed line, an answer for another id) closes the
 * connection. A request that fails on a connection taken from the idle
 * stack (which Dovecot may have closed, e.g. after a restart) is retried
 * once on a new connection.
 *
 * Generations: dovecot_auth_reset bumps da->gen; a connection of an older
 * generation is closed instead of going back to the stack.
 *
 * Logs: "dovecot_auth_down" once when Dovecot becomes unreachable and
 * "dovecot_auth_up" when it answers again; timeouts, protocol errors and
 * temporary failures each time. The password, the resp= value and the AUTH
 * line never appear; the AUTH line is built in a secret buffer.
 */
#include "auth/dovecot_auth.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define DOVECOT_AUTH_MAJOR 1 /* major versions must match */
#define DOVECOT_AUTH_MINOR 2 /* 1.3 (Dovecot 2.4) adds channel-binding mechanisms */

/* --- pure helpers ---------------------------------------------------------- */

int
dovecot_auth_escape(const char *p, size_t len, struct buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		char e;

		switch (p[i]) {
		case '\001':
			e = '1';
			break;
		case '\t':
			e = 't';
			break;
		case '\r':
			e = 'r';
			break;
		case '\n':
			e = 'n';
			break;
		case '\0':
			e = '0';
			break;
		default:
			continue;
		}
		if (buf_append(out, p + start, i - start) == -1 ||
		    buf_append(out, "\001", 1) == -1 || buf_append(out, &e, 1) == -1)
			return -1;
		start = i + 1;
	}
	return buf_append(out, p + start, len - start);
}

int
dovecot_auth_unescape(const char *p, size_t len, char *out, size_t outmax, size_t *outlen_r)
{
	size_t n = 0;

	if (outmax == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char ch = p[i];

		if (ch == '\001') {
			if (++i == len)
				return -1; /* lone escape at the end */
			switch (p[i]) {
			case '0':
				ch = '\0';
				break;
			case '1':
				ch = '\001';
				break;
			case 't':
				ch = '\t';
				break;
			case 'r':
				ch = '\r';
				break;
			case 'n':
				ch = '\n';
				break;
			default:
				ch = p[i]; /* "anything else writes the character itself" */
				break;
			}
		}
		if (n + 1 >= outmax)
			return -1;
		out[n++] = ch;
	}
	out[n] = '\0';
	*outlen_r = n;
	return 0;
}

/* Copies an unescaped field into out, cut to fit (for codes and reasons,
 * which only go to logs). Control characters become '?'. */
static void
dovecot_auth_copy_cut(const char *p, size_t len, char *out, size_t outmax)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < outmax; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\001' && i + 1 < len) {
			i++;
			ch = '?';
		}
		out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
}

static int
dovecot_auth_parse_uint(const char *p, size_t len, uint32_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

static bool
dovecot_auth_field_is(const char *f, size_t flen, const char *name)
{
	size_t n = strlen(name);

	return flen == n && memcmp(f, name, n) == 0;
}

/* name=value: *v_r and *vlen_r point at the value. */
static bool
dovecot_auth_field_value(
    const char *f, size_t flen, const char *name, const char **v_r, size_t *vlen_r)
{
	size_t n = strlen(name);

	if (flen < n + 1 || memcmp(f, name, n) != 0 || f[n] != '=')
		return false;
	*v_r = f + n + 1;
	*vlen_r = flen - n - 1;
	return true;
}

/* Parameters of OK and FAIL (fields from the third on). */
static int
dovecot_auth_parse_param(
    struct dovecot_auth_reply *r, const char *f, size_t flen, const char **errstr_r)
{
	const char *v;
	size_t vlen, ulen;

	if (dovecot_auth_field_value(f, flen, "user", &v, &vlen)) {
		if (dovecot_auth_unescape(v, vlen, r->user, sizeof(r->user), &ulen) == -1) {
			*errstr_r = "user= too long or badly escaped";
			return -1;
		}
		for (size_t i = 0; i < ulen; i++) {
			unsigned char ch = (unsigned char)r->user[i];

			if (ch < 0x20 || ch == 0x7f) {
				*errstr_r = "user= holds a control character";
				return -1;
			}
		}
		r->has_user = true;
	} else if (dovecot_auth_field_value(f, flen, "code", &v, &vlen)) {
		dovecot_auth_copy_cut(v, vlen, r->code, sizeof(r->code));
		if (strcmp(r->code, "temp_fail") == 0)
			r->temp = true;
	} else if (dovecot_auth_field_value(f, flen, "reason", &v, &vlen)) {
		dovecot_auth_copy_cut(v, vlen, r->reason, sizeof(r->reason));
	} else if (dovecot_auth_field_is(f, flen, "temp")) {
		r->temp = true; /* Dovecot 2.0 to 2.2 */
	} else if (dovecot_auth_field_is(f, flen, "nologin") ||
	    dovecot_auth_field_value(f, flen, "nologin", &v, &vlen)) {
		r->nologin = true; /* only its presence matters */
	} else if (dovecot_auth_field_is(f, flen, "proxy") ||
	    dovecot_auth_field_value(f, flen, "proxy", &v, &vlen) ||
	    dovecot_auth_field_is(f, flen, "proxy_maybe") ||
	    dovecot_auth_field_value(f, flen, "proxy_maybe", &v, &vlen)) {
		r->proxy = true;
	}
	/* anything else: "If optional parameter name is unknown, the parameter
	 * should just be ignored." */
	return 0;
}

int
dovecot_auth_parse_reply(
    const char *line, size_t len, struct dovecot_auth_reply *r, const char **errstr_r)
{
	const char *f[3];
	size_t flen[3], nf = 0, pos = 0;
	uint32_t v;

	memset(r, 0, sizeof(*r));
	if (memchr(line, '\0', len) != NULL) {
		*errstr_r = "NUL byte in a line";
		return -1;
	}
	if (len > 0 && line[len - 1] == '\r') {
		*errstr_r = "CR at the end of a line";
		return -1;
	}
	/* the command and the first two fields; the rest is parsed as params */
	while (nf < 3) {
		const char *tab = memchr(line + pos, '\t', len - pos);
		size_t end = tab != NULL ? (size_t)(tab - line) : len;

		f[nf] = line + pos;
		flen[nf] = end - pos;
		nf++;
		if (tab == NULL) {
			pos = len + 1;
			break;
		}
		pos = end + 1;
	}

	if (dovecot_auth_field_is(f[0], flen[0], "VERSION")) {
		r->kind = DOVECOT_AUTH_R_VERSION;
		if (nf < 3 || dovecot_auth_parse_uint(f[1], flen[1], &v) == -1) {
			*errstr_r = "bad VERSION line";
			return -1;
		}
		r->major = v;
		if (dovecot_auth_parse_uint(f[2], flen[2], &v) == -1) {
			*errstr_r = "bad VERSION line";
			return -1;
		}
		r->minor = v;
		return 0;
	}
	if (dovecot_auth_field_is(f[0], flen[0], "MECH")) {
		size_t mlen;

		r->kind = DOVECOT_AUTH_R_MECH;
		if (nf < 2 || flen[1] == 0 ||
		    dovecot_auth_unescape(f[1], flen[1], r->mech, sizeof(r->mech), &mlen) == -1) {
			*errstr_r = "bad MECH line";
			return -1;
		}
		return 0;
	}
	if (dovecot_auth_field_is(f[0], flen[0], "SPID")) {
		r->kind = DOVECOT_AUTH_R_SPID;
		return 0;
	}
	if (dovecot_auth_field_is(f[0], flen[0], "CUID")) {
		r->kind = DOVECOT_AUTH_R_CUID;
		return 0;
	}
	if (dovecot_auth_field_is(f[0], flen[0], "COOKIE")) {
		r->kind = DOVECOT_AUTH_R_COOKIE;
		return 0;
	}
	if (dovecot_auth_field_is(f[0], flen[0], "DONE")) {
		r->kind = DOVECOT_AUTH_R_DONE;
		return 0;
	}
	if (dovecot_auth_field_is(f[0], flen[0], "OK"))
		r->kind = DOVECOT_AUTH_R_OK;
	else if (dovecot_auth_field_is(f[0], flen[0], "FAIL"))
		r->kind = DOVECOT_AUTH_R_FAIL;
	else if (dovecot_auth_field_is(f[0], flen[0], "CONT"))
		r->kind = DOVECOT_AUTH_R_CONT;
	else {
		r->kind = DOVECOT_AUTH_R_OTHER;
		return 0;
	}
	if (nf < 2 || dovecot_auth_parse_uint(f[1], flen[1], &r->id) == -1) {
		*errstr_r = "bad request id";
		return -1;
	}
	if (r->kind == DOVECOT_AUTH_R_CONT)
		return 0; /* the challenge is not ours to read: PLAIN never continues */
	/* parameters: from f[2] to the end of the line, TAB-separated */
	if (nf == 3) {
		pos = (size_t)(f[2] - line);
		while (pos <= len) {
			const char *tab = memchr(line + pos, '\t', len - pos);
			size_t end = tab != NULL ? (size_t)(tab - line) : len;

			if (end > pos &&
			    dovecot_auth_parse_param(r, line + pos, end - pos, errstr_r) == -1)
				return -1;
			pos = end + 1;
		}
	}
	return 0;
}

/* --- connections ----------------------------------------------------------- */

struct dovecot_auth_conn {
	struct dovecot_auth_conn *next;
	int fd;
	unsigned gen;
	uint32_t next_id;
	size_t inlen;
	char in[DOVECOT_AUTH_LINE_MAX];
};

struct dovecot_auth {
	char *path;
	pthread_mutex_t lock; /* idle, gen, down */
	struct dovecot_auth_conn *idle;
	unsigned gen;
	bool down; /* "dovecot_auth_down" logged, "up" not yet */
};

static int64_t
dovecot_auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
dovecot_auth_conn_close(struct dovecot_auth_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

/* Waits for events on c->fd until deadline. 0, or -1 with *errstr_r. */
static int
dovecot_auth_wait(
    struct dovecot_auth_conn *c, short events, int64_t deadline, const char **errstr_r)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline - dovecot_auth_now_ms();
		if (left <= 0) {
			*errstr_r = "timed out";
			return -1;
		}
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0) {
			*errstr_r = "timed out";
			return -1;
		}
		if (errno != EINTR) {
			*errstr_r = strerror(errno);
			return -1;
		}
	}
}

static int
dovecot_auth_send(
    struct dovecot_auth_conn *c, const char *p, size_t len, int64_t deadline, const char **errstr_r)
{
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (dovecot_auth_wait(c, POLLOUT, deadline, errstr_r) == -1)
				return -1;
			continue;
		}
		*errstr_r = n == 0 ? "connection closed" : strerror(errno);
		return -1;
	}
	return 0;
}

/*
 * The next line, without its LF: *line_r points into c->in and stays valid
 * until dovecot_auth_consume(c, *len_r + 1).
 */
static int
dovecot_auth_read_line(struct dovecot_auth_conn *c, int64_t deadline, const char **line_r,
    size_t *len_r, const char **errstr_r)
{
	for (;;) {
		const char *nl = memchr(c->in, '\n', c->inlen);
		ssize_t n;

		if (nl != NULL) {
			*line_r = c->in;
			*len_r = (size_t)(nl - c->in);
			return 0;
		}
		if (c->inlen == sizeof(c->in)) {
			*errstr_r = "line too long";
			return -1;
		}
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (n > 0) {
			c->inlen += (size_t)n;
			continue;
		}
		if (n == 0) {
			*errstr_r = "connection closed by Dovecot";
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*errstr_r = strerror(errno);
			return -1;
		}
		if (dovecot_auth_wait(c, POLLIN, deadline, errstr_r) == -1)
			return -1;
	}
}

static void
dovecot_auth_consume(struct dovecot_auth_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

/* Connects and does the handshake. NULL with *errstr_r on failure. */
static struct dovecot_auth_conn *
dovecot_auth_connect(struct dovecot_auth *da, unsigned gen, int64_t deadline, const char **errstr_r)
{
	struct dovecot_auth_conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_un sun;
	struct dovecot_auth_reply r;
	char hello[64];
	const char *line;
	size_t len;
	bool version = false, plain = false;
	int n;

	c->fd = -1;
	c->gen = gen;
	c->next_id = 1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(da->path) >= sizeof(sun.sun_path)) {
		*errstr_r = "socket path too long";
		goto fail;
	}
	memcpy(sun.sun_path, da->path, strlen(da->path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		/* a UNIX socket connects at once or fails (EAGAIN: backlog full) */
		*errstr_r = strerror(errno);
		goto fail;
	}
	n = snprintf(hello, sizeof(hello), "VERSION\t%d\t%d\nCPID\t%ld\n", DOVECOT_AUTH_MAJOR,
	    DOVECOT_AUTH_MINOR, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(hello))
		abort();
	if (dovecot_auth_send(c, hello, (size_t)n, deadline, errstr_r) == -1)
		goto fail;
	for (;;) {
		if (dovecot_auth_read_line(c, deadline, &line, &len, errstr_r) == -1)
			goto fail;
		if (dovecot_auth_parse_reply(line, len, &r, errstr_r) == -1)
			goto fail;
		dovecot_auth_consume(c, len + 1);
		if (r.kind == DOVECOT_AUTH_R_VERSION) {
			if (r.major != DOVECOT_AUTH_MAJOR) {
				*errstr_r = "unsupported protocol major version";
				goto fail;
			}
			version = true;
		} else if (!version) {
			*errstr_r = "handshake does not start with VERSION";
			goto fail;
		} else if (r.kind == DOVECOT_AUTH_R_MECH) {
			plain = plain || strcmp(r.mech, "PLAIN") == 0;
		} else if (r.kind == DOVECOT_AUTH_R_DONE) {
			break;
		} else if (r.kind != DOVECOT_AUTH_R_SPID && r.kind != DOVECOT_AUTH_R_CUID &&
		    r.kind != DOVECOT_AUTH_R_COOKIE && r.kind != DOVECOT_AUTH_R_OTHER) {
			*errstr_r = "unexpected line in the handshake";
			goto fail;
		}
	}
	if (!plain) {
		*errstr_r = "Dovecot does not offer PLAIN (add plain to auth_mechanisms)";
		goto fail;
	}
	return c;
fail:
	dovecot_auth_conn_close(c);
	return NULL;
}

static void
dovecot_auth_set_down(struct dovecot_auth *da, const char *error)
{
	bool log;

	pthread_mutex_lock(&da->lock);
	log = !da->down;
	da->down = true;
	pthread_mutex_unlock(&da->lock);
	if (log)
		log_event(LOG_ERR, "dovecot_auth_down", 0, "{s:s, s:s}", "socket", da->path,
		    "error", error);
}

static void
dovecot_auth_set_up(struct dovecot_auth *da)
{
	bool log;

	pthread_mutex_lock(&da->lock);
	log = da->down;
	da->down = false;
	pthread_mutex_unlock(&da->lock);
	if (log)
		log_event(LOG_NOTICE, "dovecot_auth_up", 0, "{s:s}", "socket", da->path);
}

/* An idle connection of the current generation, or a new one. *reused_r
 * tells which. */
static struct dovecot_auth_conn *
dovecot_auth_take(struct dovecot_auth *da, int64_t deadline, bool *reused_r, const char **errstr_r)
{
	struct dovecot_auth_conn *c;
	unsigned gen;

	pthread_mutex_lock(&da->lock);
	c = da->idle;
	if (c != NULL)
		da->idle = c->next;
	gen = da->gen;
	pthread_mutex_unlock(&da->lock);
	if (c != NULL) {
		c->next = NULL;
		*reused_r = true;
		return c;
	}
	*reused_r = false;
	return dovecot_auth_connect(da, gen, deadline, errstr_r);
}

static void
dovecot_auth_give_back(struct dovecot_auth *da, struct dovecot_auth_conn *c)
{
	pthread_mutex_lock(&da->lock);
	if (c->gen == da->gen && c->inlen == 0) {
		c->next = da->idle;
		da->idle = c;
		c = NULL;
	}
	pthread_mutex_unlock(&da->lock);
	dovecot_auth_conn_close(c);
}

struct dovecot_auth *
dovecot_auth_new(const char *path)
{
	struct dovecot_auth *da = xcalloc(1, sizeof(*da));

	da->path = xstrdup(path);
	pthread_mutex_init(&da->lock, NULL);
	return da;
}

void
dovecot_auth_reset(struct dovecot_auth *da)
{
	struct dovecot_auth_conn *c, *next;

	pthread_mutex_lock(&da->lock);
	da->gen++;
	c = da->idle;
	da->idle = NULL;
	pthread_mutex_unlock(&da->lock);
	for (; c != NULL; c = next) {
		next = c->next;
		dovecot_auth_conn_close(c);
	}
}

void
dovecot_auth_free(struct dovecot_auth *da)
{
	if (da == NULL)
		return;
	dovecot_auth_reset(da);
	pthread_mutex_destroy(&da->lock);
	free(da->path);
	free(da);
}

int
dovecot_auth_probe(struct dovecot_auth *da, char *err, size_t errlen)
{
	const char *errstr = "";
	bool reused;
	struct dovecot_auth_conn *c = dovecot_auth_take(
	    da, dovecot_auth_now_ms() + DOVECOT_AUTH_TIMEOUT_MS, &reused, &errstr);

	if (c == NULL) {
		snprintf(err, errlen, "%s: %s", da->path, errstr);
		return -1;
	}
	dovecot_auth_give_back(da, c);
	return 0;
}

/* Builds the AUTH line into out (a secret buffer). -1 if it cannot be sent
 * as PLAIN (NUL in the name or password) or is too long. */
static int
dovecot_auth_request(uint32_t id, uint64_t session_id, const char *rip, const char *user,
    size_t userlen, const char *password, size_t passlen, struct buf *out)
{
	struct buf plain;
	char session[32];
	int r = -1;

	buf_init(&plain, DOVECOT_AUTH_LINE_MAX);
	buf_set_secret(&plain);
	if (userlen == 0 || memchr(user, '\0', userlen) != NULL ||
	    memchr(password, '\0', passlen) != NULL)
		goto fail;
	/* RFC 4616: [authzid] NUL authcid NUL passwd; no authzid */
	if (buf_append(&plain, "", 1) == -1 || buf_append(&plain, user, userlen) == -1 ||
	    buf_append(&plain, "", 1) == -1 || buf_append(&plain, password, passlen) == -1)
		goto fail;
	snprintf(session, sizeof(session), "smtpgate-%016llx", (unsigned long long)session_id);
	/* no-penalty: Dovecot's auth penalty (up to 15 s per attempt) would
	 * hold our workers, and without rip= it keeps one bucket for all our
	 * clients: one attacker's failures would delay every user's login.
	 * smtpgate's own limits apply instead. */
	if (buf_printf(out, "AUTH\t%u\tPLAIN\tservice=smtp\tsecured\tno-penalty\tsession=", id) ==
	        -1 ||
	    dovecot_auth_escape(session, strlen(session), out) == -1)
		goto fail;
	if (rip != NULL && rip[0] != '\0' &&
	    (buf_append_str(out, "\trip=") == -1 ||
	        dovecot_auth_escape(rip, strlen(rip), out) == -1))
		goto fail;
	if (buf_append_str(out, "\tresp=") == -1 ||
	    base64_encode(plain.data, plain.len, out) == -1 || buf_append(out, "\n", 1) == -1)
		goto fail;
	r = 0;
fail:
	buf_free(&plain);
	return r;
}

/* One attempt on c. *io_r is set when the failure is the connection's (the
 * caller may retry on a new one). */
static enum dovecot_auth_result
dovecot_auth_exchange(struct dovecot_auth *da, struct dovecot_auth_conn *c, uint64_t session_id,
    const struct buf *req, uint32_t id, int64_t deadline, char *user_r, size_t user_rlen,
    bool *ok_conn_r, bool *io_r, const char **ioerr_r)
{
	struct dovecot_auth_reply r;
	const char *errstr = "", *line;
	size_t len;

	*ok_conn_r = false;
	*io_r = false;
	if (dovecot_auth_send(c, req->data, req->len, deadline, &errstr) == -1) {
		*io_r = strcmp(errstr, "timed out") != 0;
		goto tempfail;
	}
	for (;;) {
		if (dovecot_auth_read_line(c, deadline, &line, &len, &errstr) == -1) {
			*io_r = strcmp(errstr, "timed out") != 0;
			goto tempfail;
		}
		if (dovecot_auth_parse_reply(line, len, &r, &errstr) == -1)
			goto protocol;
		dovecot_auth_consume(c, len + 1);
		if (r.kind == DOVECOT_AUTH_R_OK || r.kind == DOVECOT_AUTH_R_FAIL ||
		    r.kind == DOVECOT_AUTH_R_CONT) {
			if (r.id != id) {
				errstr = "answer for another request id";
				goto protocol;
			}
			break;
		}
		/* anything else between requests is not for us: ignore it */
	}
	if (r.kind == DOVECOT_AUTH_R_CONT) {
		errstr = "CONT for PLAIN with an initial response";
		goto protocol;
	}
	*ok_conn_r = true;
	if (r.kind == DOVECOT_AUTH_R_FAIL) {
		if (!r.temp)
			return DOVECOT_AUTH_FAIL;
		log_event(LOG_WARNING, "dovecot_auth_tempfail", session_id, "{s:s, s:s, s:s}",
		    "socket", da->path, "code", r.code, "reason", r.reason);
		return DOVECOT_AUTH_TEMPFAIL;
	}
	/* OK does not always mean access: nologin (a denial, or a referral with
	 * host=) and proxy (the password may not even have been checked, e.g.
	 * with nopassword) are refusals for us. */
	if (r.nologin || r.proxy) {
		log_event(LOG_NOTICE, "dovecot_auth_refused", session_id, "{s:s, s:s}", "flag",
		    r.nologin ? "nologin" : "proxy", "reason", r.reason);
		return DOVECOT_AUTH_FAIL;
	}
	if (r.has_user && r.user[0] != '\0')
		snprintf(user_r, user_rlen, "%s", r.user);
	return DOVECOT_AUTH_OK;
protocol:
	log_event(LOG_ERR, "dovecot_auth_error", session_id, "{s:s, s:s}", "socket", da->path,
	    "error", errstr);
	return DOVECOT_AUTH_TEMPFAIL;
tempfail:
	if (!*io_r)
		log_event(LOG_ERR, "dovecot_auth_error", session_id, "{s:s, s:s}", "socket",
		    da->path, "error", errstr);
	*ioerr_r = errstr;
	return DOVECOT_AUTH_TEMPFAIL;
}

enum dovecot_auth_result
dovecot_auth_verify(struct dovecot_auth *da, uint64_t session_id, const char *rip, const char *user,
    size_t userlen, const char *password, size_t passlen, char *user_r, size_t user_rlen)
{
	int64_t deadline = dovecot_auth_now_ms() + DOVECOT_AUTH_TIMEOUT_MS;
	enum dovecot_auth_result res = DOVECOT_AUTH_TEMPFAIL;
	struct dovecot_auth_conn *c;
	const char *errstr = "";
	bool reused, ok_conn, io;
	struct buf req;

	if (userlen > DOVECOT_AUTH_USER_MAX)
		return DOVECOT_AUTH_FAIL;
	snprintf(user_r, user_rlen, "%.*s", (int)userlen, user);
	buf_init(&req, DOVECOT_AUTH_LINE_MAX);
	buf_set_secret(&req);
	for (int attempt = 0; attempt < 2; attempt++) {
		c = dovecot_auth_take(da, deadline, &reused, &errstr);
		if (c == NULL) {
			dovecot_auth_set_down(da, errstr);
			break;
		}
		buf_reset(&req);
		if (dovecot_auth_request(c->next_id++, session_id, rip, user, userlen, password,
		        passlen, &req) == -1) {
			/* not expressible in PLAIN: cannot match any password */
			dovecot_auth_give_back(da, c);
			res = DOVECOT_AUTH_FAIL;
			break;
		}
		res = dovecot_auth_exchange(da, c, session_id, &req, c->next_id - 1, deadline,
		    user_r, user_rlen, &ok_conn, &io, &errstr);
		if (ok_conn) {
			dovecot_auth_set_up(da);
			dovecot_auth_give_back(da, c);
			break;
		}
		dovecot_auth_conn_close(c);
		/* a pooled connection may have died since its last use (Dovecot
		 * restarted): try once more on a fresh one */
		if (io && reused)
			continue;
		if (io)
			dovecot_auth_set_down(da, errstr);
		break;
	}
	buf_free(&req);
	return res;
}

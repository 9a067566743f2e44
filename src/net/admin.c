/*
 * admin: an evhttp server on its own thread and event_base (admin.h).
 *
 * Lifecycle: admin_new -> admin_route* -> admin_start (bind, then the thread
 * runs the base) -> admin_free (loopbreak from the caller's thread, join,
 * free). The route table is immutable once the thread runs, so the request
 * callback reads it without a lock. The token digest can change while it
 * runs (SIGHUP): auth_lock guards it. libevent stays inside src/net/:
 * handlers see plain strings and a struct buf.
 */
#include "net/admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/listener.h"

#define ADMIN_BACKLOG 64

#define ADMIN_MD_LEN 32 /* SHA-256 */

struct admin_route {
	char *prefix;
	size_t len;
	unsigned flags;
	admin_handler *h;
	void *arg;
};

struct admin {
	struct event_base *base;
	struct evhttp *http;
	struct admin_route *routes;
	size_t nroutes;
	pthread_t thread;
	bool running;
	pthread_mutex_t auth_lock;
	bool auth_on; /* token_md is set */
	enum admin_auth_mode auth_mode;
	unsigned char token_md[ADMIN_MD_LEN];
};

struct admin *
admin_new(void)
{
	struct admin *a = xcalloc(1, sizeof(struct admin));

	pthread_mutex_init(&a->auth_lock, NULL);
	return a;
}

static void
admin_sha256(const void *p, size_t n, unsigned char md[ADMIN_MD_LEN])
{
	unsigned len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != ADMIN_MD_LEN)
		abort();
}

void
admin_set_auth(struct admin *a, const char *token, enum admin_auth_mode mode)
{
	unsigned char md[ADMIN_MD_LEN];

	if (token != NULL)
		admin_sha256(token, strlen(token), md);
	pthread_mutex_lock(&a->auth_lock);
	OPENSSL_cleanse(a->token_md, sizeof(a->token_md));
	a->auth_on = token != NULL;
	a->auth_mode = mode;
	if (token != NULL)
		memcpy(a->token_md, md, sizeof(md));
	pthread_mutex_unlock(&a->auth_lock);
	OPENSSL_cleanse(md, sizeof(md));
}

enum admin_bearer
admin_check_bearer(const char *authorization, const unsigned char md[32])
{
	unsigned char got[ADMIN_MD_LEN];
	const char *t;
	size_t n;
	int diff;

	if (authorization == NULL)
		return ADMIN_BEARER_MISSING;
	/* RFC 6750 2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive */
	if (strncasecmp(authorization, "Bearer", 6) != 0 || authorization[6] != ' ')
		return ADMIN_BEARER_NOT_BEARER;
	t = authorization + 7;
	while (*t == ' ')
		t++;
	n = strlen(t);
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n == 0)
		return ADMIN_BEARER_NOT_BEARER;
	/* digests of equal length: the comparison says nothing about the
	 * token's length or where a guess first differs */
	admin_sha256(t, n, got);
	diff = CRYPTO_memcmp(got, md, ADMIN_MD_LEN);
	OPENSSL_cleanse(got, sizeof(got));
	return diff == 0 ? ADMIN_BEARER_OK : ADMIN_BEARER_WRONG;
}

void
admin_route(struct admin *a, const char *path_prefix, unsigned flags, admin_handler *h, void *arg)
{
	struct admin_route *r;

	a->routes = xrealloc(a->routes, (a->nroutes + 1) * sizeof(*a->routes));
	r = &a->routes[a->nroutes++];
	r->prefix = xstrdup(path_prefix);
	r->len = strlen(path_prefix);
	r->flags = flags;
	r->h = h;
	r->arg = arg;
}

/* The longest prefix that equals path or is followed by '/' in it. */
static const struct admin_route *
admin_find_route(const struct admin *a, const char *path)
{
	const struct admin_route *best = NULL;

	for (size_t i = 0; i < a->nroutes; i++) {
		const struct admin_route *r = &a->routes[i];

		if (strncmp(path, r->prefix, r->len) != 0)
			continue;
		if (path[r->len] != '\0' && path[r->len] != '/' &&
		    !(r->len > 0 && r->prefix[r->len - 1] == '/'))
			continue;
		if (best == NULL || r->len > best->len)
			best = r;
	}
	return best;
}

static const char *
admin_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return NULL;
	}
}

static const char *
admin_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static void
admin_send(struct evhttp_request *req, int status, const char *ctype, const void *p, size_t n)
{
	struct evbuffer *ob = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (ob == NULL)
		abort();
	if (n > 0)
		evbuffer_add(ob, p, n);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, status, admin_reason(status), ob);
	evbuffer_free(ob);
}

/* Whether the request may go on; if not, the 401 is sent and logged. r is
 * NULL for a path no route takes (404 unless every request needs the token). */
static bool
admin_authorize(
    struct admin *a, struct evhttp_request *req, const char *method, const struct admin_route *r)
{
	static const char missing[] =
	    "{\"error\":\"authentication required: send Authorization: Bearer TOKEN, with the "
	    "token of [admin] token_file\"}\n";
	static const char wrong[] =
	    "{\"error\":\"invalid token: it is not the token of [admin] token_file\"}\n";
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	const char *authz =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	enum admin_bearer got;
	char *host = NULL;
	ev_uint16_t port = 0;
	bool need;

	pthread_mutex_lock(&a->auth_lock);
	need = a->auth_on &&
	    (a->auth_mode == ADMIN_AUTH_ALL ||
	        (r != NULL &&
	            (strcmp(method, "GET") != 0 || (r->flags & ADMIN_ROUTE_OPEN_GET) == 0)));
	got = need ? admin_check_bearer(authz, a->token_md) : ADMIN_BEARER_OK;
	pthread_mutex_unlock(&a->auth_lock);
	if (got == ADMIN_BEARER_OK)
		return true;
	if (conn != NULL)
		evhttp_connection_get_peer(conn, &host, &port);
	/* never the presented value: it may be a real token sent to the wrong
	 * server, or one a typo away from the right one */
	log_event(LOG_WARNING, "admin_auth", 0, "{s:s, s:s, s:s, s:s}", "client",
	    host != NULL ? host : "?", "method", method, "route", r != NULL ? r->prefix : "(none)",
	    "result",
	    got == ADMIN_BEARER_MISSING     ? "missing"
	        : got == ADMIN_BEARER_WRONG ? "wrong"
	                                    : "not_bearer");
	/* RFC 6750 3 and 3.1: no error code when no token came */
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
	    got == ADMIN_BEARER_WRONG ? "Bearer realm=\"smtpgate\", error=\"invalid_token\""
	                              : "Bearer realm=\"smtpgate\"");
	if (got == ADMIN_BEARER_WRONG)
		admin_send(req, 401, "application/json", wrong, sizeof(wrong) - 1);
	else
		admin_send(req, 401, "application/json", missing, sizeof(missing) - 1);
	return false;
}

static void
admin_request_cb(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *method = admin_method_name(evhttp_request_get_command(req));
	const char *rawpath = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	const char *ctype = "text/plain; charset=utf-8";
	const struct admin_route *r;
	struct evbuffer *ib = evhttp_request_get_input_buffer(req);
	char *path = NULL, *body = NULL;
	size_t pathlen = 0, bodylen = ib != NULL ? evbuffer_get_length(ib) : 0;
	struct buf out;
	int status;

	if (method == NULL) {
		admin_send(req, 405, ctype, "method not allowed\n", 19);
		return;
	}
	if (rawpath == NULL || rawpath[0] == '\0')
		rawpath = "/";
	path = evhttp_uridecode(rawpath, 0, &pathlen);
	if (path == NULL || strlen(path) != pathlen) {
		free(path);
		admin_send(req, 400, ctype, "bad path\n", 9);
		return;
	}
	r = admin_find_route(a, path);
	if (!admin_authorize(a, req, method, r)) {
		free(path);
		return;
	}
	if (r == NULL) {
		free(path);
		admin_send(req, 404, ctype, "not found\n", 10);
		return;
	}
	if (bodylen > ADMIN_BODY_MAX) { /* evhttp enforces it too */
		free(path);
		admin_send(req, 413, ctype, "body too large\n", 15);
		return;
	}
	if (bodylen > 0) {
		body = xmalloc(bodylen + 1);
		evbuffer_copyout(ib, body, bodylen);
		body[bodylen] = '\0';
	}
	buf_init(&out, ADMIN_REPLY_MAX);
	status =
	    r->h(r->arg, method, path, query != NULL ? query : "", body, bodylen, &out, &ctype);
	if (status < 100 || status > 599)
		status = 500;
	admin_send(req, status, ctype, out.data, out.len);
	buf_free(&out);
	free(body);
	free(path);
}

static void *
admin_main(void *arg)
{
	struct admin *a = arg;

	event_base_loop(a->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* A plain listening socket: no SO_REUSEPORT, so a second server (or anything
 * else) on the same admin port is an error instead of a silent split. */
static int
admin_socket(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
{
	char addr[64];
	int fd, on = 1;

	listener_format_addr(sa, addr, sizeof(addr));
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "[admin] socket for %s: %s", addr, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, sa, len) == -1) {
		snprintf(err, errlen, "[admin] cannot bind %s: %s", addr, strerror(errno));
		goto fail;
	}
	if (listen(fd, ADMIN_BACKLOG) == -1) {
		snprintf(err, errlen, "[admin] listen on %s: %s", addr, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
admin_start(struct admin *a, const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
{
	int fd = admin_socket(sa, len, err, errlen);

	return fd == -1 ? -1 : admin_start_fd(a, fd, err, errlen);
}

int
admin_listen(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
{
	return admin_socket(sa, len, err, errlen);
}

int
admin_start_fd(struct admin *a, int fd, char *err, size_t errlen)
{
	if (a->running) {
		close(fd);
		snprintf(err, errlen, "[admin] already started");
		return -1;
	}
	a->base = event_base_new();
	if (a->base == NULL)
		abort();
	a->http = evhttp_new(a->base);
	if (a->http == NULL)
		abort();
	evhttp_set_max_headers_size(a->http, ADMIN_HEADERS_MAX);
	evhttp_set_max_body_size(a->http, ADMIN_BODY_MAX);
	evhttp_set_timeout(a->http, ADMIN_TIMEOUT);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(a->http, admin_request_cb, a);
	if (evhttp_accept_socket(a->http, fd) == -1) {
		close(fd);
		snprintf(err, errlen, "[admin] cannot accept on the socket");
		return -1;
	}
	if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
		snprintf(err, errlen, "[admin] cannot start the thread");
		return -1;
	}
	a->running = true;
	return 0;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->running) {
		event_base_loopbreak(a->base);
		pthread_join(a->thread, NULL);
	}
	if (a->http != NULL)
		evhttp_free(a->http); /* closes the bound socket */
	if (a->base != NULL)
		event_base_free(a->base);
	for (size_t i = 0; i < a->nroutes; i++)
		free(a->routes[i].prefix);
	free(a->routes);
	OPENSSL_cleanse(a->token_md, sizeof(a->token_md));
	pthread_mutex_destroy(&a->auth_lock);
	free(a);
}

int
admin_query_get(const char *query, const char *key, char *out, size_t outlen)
{
	struct evkeyvalq q;
	const char *v;
	int rc = -1;

	if (query == NULL || outlen == 0)
		return -1;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) == -1)
		goto fail;
	v = evhttp_find_header(&q, key);
	if (v == NULL || strlen(v) >= outlen)
		goto fail;
	memcpy(out, v, strlen(v) + 1);
	rc = 0;
fail:
	evhttp_clear_headers(&q);
	return rc;
}

int
admin_call(const struct sockaddr *sa, socklen_t len, const char *token, const char *method,
    const char *target, const char *body, size_t bodylen, struct buf *out, int *status_r, char *err,
    size_t errlen)
{
	struct timeval tv = {ADMIN_TIMEOUT, 0};
	struct buf req, in;
	char addr[64], chunk[4096];
	const char *p, *end;
	int fd, saved, rc = -1;
	ssize_t n;

	listener_format_addr(sa, addr, sizeof(addr));
	buf_init(&req, ADMIN_HEADERS_MAX + ADMIN_BODY_MAX);
	buf_set_secret(&req); /* it holds the token */
	buf_init(&in, ADMIN_HEADERS_MAX + out->max);
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, sa, len) == -1) {
		snprintf(err, errlen, "cannot connect to the admin listener %s: %s", addr,
		    strerror(errno));
		goto fail;
	}
	if (buf_printf(&req,
	        "%s %s HTTP/1.0\r\nHost: smtpgate\r\nConnection: close\r\n"
	        "%s%s%s"
	        "Content-Length: %zu\r\n\r\n",
	        method, target, token != NULL ? "Authorization: Bearer " : "",
	        token != NULL ? token : "", token != NULL ? "\r\n" : "",
	        body != NULL ? bodylen : 0) == -1 ||
	    (body != NULL && buf_append(&req, body, bodylen) == -1)) {
		snprintf(err, errlen, "request too large");
		errno = EMSGSIZE;
		goto fail;
	}
	for (size_t off = 0; off < req.len; off += (size_t)n) {
		n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
		if (n <= 0) {
			snprintf(err, errlen, "send to %s: %s", addr, strerror(errno));
			goto fail;
		}
	}
	while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
		if (buf_append(&in, chunk, (size_t)n) == -1) {
			snprintf(err, errlen, "reply from %s too large", addr);
			errno = EMSGSIZE;
			goto fail;
		}
	}
	if (n == -1) {
		snprintf(err, errlen, "reading from %s: %s", addr, strerror(errno));
		goto fail;
	}
	/* "HTTP/1.x NNN reason\r\n" ... "\r\n\r\n" body */
	if (in.len < 12 || strncmp(in.data, "HTTP/1.", 7) != 0 ||
	    sscanf(in.data + 9, "%3d", status_r) != 1 ||
	    (end = strstr(in.data, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "bad reply from %s", addr);
		errno = EPROTO;
		goto fail;
	}
	p = end + 4;
	if (buf_append(out, p, in.len - (size_t)(p - in.data)) == -1) {
		snprintf(err, errlen, "reply from %s too large", addr);
		errno = EMSGSIZE;
		goto fail;
	}
	rc = 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	buf_free(&req);
	buf_free(&in);
	errno = saved;
	return rc;
}

/*
 * admin: the [admin] HTTP listener (loopback by default): /metrics, /healthz
 * and the operator API (bans, quota unlock). One thread with its own event
 * loop, never a session loop thread, so a slow scrape or an API call cannot
 * delay SMTP traffic.
 *
 * Routes are registered by path prefix before admin_start(); a request goes
 * to the route with the longest prefix that equals its path or is followed
 * by '/' in it ("/bans" takes "/bans" and "/bans/192.0.2.1"). Handlers run
 * on the admin thread: whatever they touch must be thread-safe.
 *
 * Authentication (optional): admin_set_auth() gives the bearer token (RFC
 * 6750) that requests must carry as "Authorization: Bearer TOKEN". Only its
 * SHA-256 digest is kept, compared with CRYPTO_memcmp to the digest of what
 * was presented (so neither the length nor the bytes leak through timing).
 * Which requests need it: with ADMIN_AUTH_ALL every one; with
 * ADMIN_AUTH_CHANGES every one except GET of a route registered with
 * ADMIN_ROUTE_OPEN_GET (/metrics, /healthz). A request without the right
 * token gets 401 with WWW-Authenticate: Bearer realm="smtpgate" and a JSON
 * body, and an admin_auth event (warning) is logged with the client address,
 * method and route; the presented value is never logged.
 *
 * Limits: requests of at most ADMIN_HEADERS_MAX header bytes and
 * ADMIN_BODY_MAX body bytes, ADMIN_TIMEOUT seconds per read or write, only
 * GET, POST and DELETE (others get 405 from libevent), replies of at most
 * ADMIN_REPLY_MAX bytes (a handler that overflows gets 500).
 */
#ifndef SG_NET_ADMIN_H
#define SG_NET_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>

struct buf;
struct admin;

#define ADMIN_HEADERS_MAX 8192
#define ADMIN_BODY_MAX (64 * 1024)
#define ADMIN_REPLY_MAX (8 * 1024 * 1024)
#define ADMIN_TIMEOUT 10 /* seconds */

/* Returns the HTTP status. method is "GET", "POST" or "DELETE"; path is
 * percent-decoded (never contains NUL); query is the raw query string
 * without '?' ("" when none; decode values with admin_query_get); body is
 * NUL-terminated, NULL when empty. The reply goes to out; *content_type_r
 * may be set to a static string (default "text/plain; charset=utf-8").
 * All pointers are valid for the call only. */
typedef int admin_handler(void *arg, const char *method, const char *path, const char *query,
    const char *body, size_t bodylen, struct buf *out, const char **content_type_r);

enum admin_auth_mode {
	ADMIN_AUTH_CHANGES, /* all but GET of ADMIN_ROUTE_OPEN_GET routes */
	ADMIN_AUTH_ALL, /* every request */
};

/* admin_route flags */
#define ADMIN_ROUTE_OPEN_GET 0x1 /* GET needs no token under ADMIN_AUTH_CHANGES */

/* What admin_check_bearer found. */
enum admin_bearer {
	ADMIN_BEARER_OK,
	ADMIN_BEARER_MISSING, /* no Authorization header */
	ADMIN_BEARER_NOT_BEARER, /* another scheme (Basic, ...) or no credentials */
	ADMIN_BEARER_WRONG, /* a bearer token that is not the one */
};

struct admin *admin_new(void);
/* Before admin_start. path_prefix is copied; arg is the handler's; flags
 * is 0 or ADMIN_ROUTE_OPEN_GET. */
void admin_route(
    struct admin *a, const char *path_prefix, unsigned flags, admin_handler *h, void *arg);
/* Sets the token (token NULL: no authentication, mode ignored). May be
 * called while the thread runs (SIGHUP); the next request sees it. The
 * token is not kept: only its digest, wiped by the next call and admin_free. */
void admin_set_auth(struct admin *a, const char *token, enum admin_auth_mode mode);
/* Whether an Authorization header value (NULL: none) carries the token whose
 * SHA-256 digest is md: "Bearer" (any case, RFC 7235 2.1), one or more
 * spaces, the token. Constant time in the stored token. */
enum admin_bearer admin_check_bearer(const char *authorization, const unsigned char md[32]);
/* Binds sa and starts the admin thread. -1 with a message in err. Needs
 * loop_global_init() (libevent thread support) to have run. */
int admin_start(struct admin *a, const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The listening socket of admin_start, made apart (by a process that may
 * bind it) and started on with admin_start_fd, which takes fd. */
int admin_listen(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen);
int admin_start_fd(struct admin *a, int fd, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Stops the thread (if started) and frees everything. NULL is a no-op. */
void admin_free(struct admin *a);

/* Decodes the value of key in a query string ("user=a%40b.test&x=1") into
 * out. 0, or -1 when the key is absent or the value does not fit. A decoded
 * %00 ends the value. */
int admin_query_get(const char *query, const char *key, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* The client side, for commands that talk to a running server: one blocking
 * HTTP/1.0 request to sa with a timeout of ADMIN_TIMEOUT seconds. target is
 * "/path?query" (already encoded); body may be NULL; token (NULL: none) is
 * sent as "Authorization: Bearer TOKEN" and must be a b64token (the conf
 * parser checks that), the request buffer is wiped. The reply body goes to
 * out (its limit applies) and the status to *status_r. -1 with a message in
 * err when no answer came (errno ECONNREFUSED: nothing listens there). */
int admin_call(const struct sockaddr *sa, socklen_t len, const char *token, const char *method,
    const char *target, const char *body, size_t bodylen, struct buf *out, int *status_r, char *err,
    size_t errlen) __attribute__((warn_unused_result));

#endif

/*
 * https: one blocking HTTPS request with libcurl's easy interface, for the
 * OAuth worker threads (JWKS download, RFC 7662 introspection). Never call
 * it on a loop thread.
 *
 * Every request verifies the server's certificate and name (system CA store,
 * or cafile), speaks https only (redirects too), has a connect and a total
 * timeout and caps the body it accepts.
 */
#ifndef SG_AUTH_HTTPS_H
#define SG_AUTH_HTTPS_H

#include <stddef.h>

#include "lib/buf.h"

#define HTTPS_CONNECT_TIMEOUT 5 /* seconds */
#define HTTPS_TIMEOUT 10 /* seconds for the whole request */
#define HTTPS_REDIRECTS_MAX 3

struct https_req {
	const char *url; /* https:// only */
	const char *cafile; /* PEM bundle to trust instead of the system store; NULL = system */
	const char *post; /* application/x-www-form-urlencoded body; NULL = GET */
	size_t postlen;
	const char *user; /* HTTP Basic credentials (RFC 7617); NULL = none */
	const char *password;
};

/* Once per process before threads start (curl_global_init); idempotent and
 * thread-safe. */
void https_global_init(void);

/*
 * Performs req. The body is appended to body (whose limit caps the
 * download); *status_r is the final HTTP status; *max_age_r is the
 * Cache-Control max-age in seconds, or 0 when absent (may be NULL). -1 with
 * a message in err (no secrets in it) when there was no HTTP answer
 * (connection, TLS, timeout, body too large).
 */
int https_request(const struct https_req *req, struct buf *body, long *status_r,
    unsigned *max_age_r, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif

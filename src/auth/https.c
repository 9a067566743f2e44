/*
 * https: a blocking libcurl easy request with the safety settings every
 * OAuth fetch needs (see https.h). A handle lives for one request: these
 * are rare (a JWKS refresh per hour, introspection per login), and a fresh
 * handle shares no state between requests.
 */
#include "auth/https.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct https_ctx {
	struct buf *body;
	bool overflow;
	unsigned max_age;
};

static pthread_once_t https_once = PTHREAD_ONCE_INIT;

static void
https_init_once(void)
{
	(void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
https_global_init(void)
{
	pthread_once(&https_once, https_init_once);
}

static size_t
https_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct https_ctx *x = arg;
	size_t n = size * nmemb;

	if (buf_append(x->body, p, n) == -1) {
		x->overflow = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	return n;
}

/* Cache-Control: ..., max-age=N, ... (RFC 9111 5.2.2.1). A later response
 * (after a redirect) overrides an earlier one. */
static size_t
https_header_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct https_ctx *x = arg;
	size_t n = size * nmemb, i;
	unsigned long v = 0;
	const char *q, *end = p + n;
	static const char name[] = "cache-control:";

	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)
		x->max_age = 0; /* a new response */
	if (n < sizeof(name) - 1 || strncasecmp(p, name, sizeof(name) - 1) != 0)
		return n;
	for (q = p + sizeof(name) - 1; q + 8 <= end; q++) {
		if (strncasecmp(q, "max-age=", 8) != 0)
			continue;
		if (q > p && q[-1] != ' ' && q[-1] != ',' && q[-1] != ':' && q[-1] != '\t')
			continue;
		for (i = 8; q + i < end && q[i] >= '0' && q[i] <= '9' && i < 16; i++)
			v = v * 10 + (unsigned long)(q[i] - '0');
		if (i > 8)
			x->max_age = v > 0xffffffffUL ? 0xffffffffU : (unsigned)v;
		break;
	}
	return n;
}

int
https_request(const struct https_req *req, struct buf *body, long *status_r, unsigned *max_age_r,
    char *err, size_t errlen)
{
	struct https_ctx x = {.body = body};
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *h;
	CURLcode rc;
	int r = -1;

	*status_r = 0;
	if (max_age_r != NULL)
		*max_age_r = 0;
	if (strncmp(req->url, "https://", 8) != 0) {
		snprintf(err, errlen, "not an https:// URL");
		return -1;
	}
	https_global_init();
	if ((h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		return -1;
	}
	/* NOSIGNAL: we are on a worker thread; no SIGALRM-based DNS timeouts */
	if (curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)HTTPS_REDIRECTS_MAX) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)HTTPS_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)HTTPS_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body->max) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "smtpgate") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, https_write_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, https_header_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x) != CURLE_OK) {
		snprintf(err, errlen, "curl_easy_setopt failed");
		goto fail;
	}
	if (req->cafile != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, req->cafile) != CURLE_OK) {
		snprintf(err, errlen, "curl_easy_setopt CAINFO failed");
		goto fail;
	}
	if (req->post != NULL &&
	    (curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->post) != CURLE_OK ||
	        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req->postlen) != CURLE_OK)) {
		snprintf(err, errlen, "curl_easy_setopt POSTFIELDS failed");
		goto fail;
	}
	if (req->user != NULL &&
	    (curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
	        curl_easy_setopt(h, CURLOPT_USERNAME, req->user) != CURLE_OK ||
	        curl_easy_setopt(h, CURLOPT_PASSWORD, req->password != NULL ? req->password : "") !=
	            CURLE_OK)) {
		snprintf(err, errlen, "curl_easy_setopt credentials failed");
		goto fail;
	}
	rc = curl_easy_perform(h);
	if (x.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "response larger than %zu bytes", body->max);
		goto fail;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		goto fail;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status_r) != CURLE_OK) {
		snprintf(err, errlen, "no HTTP status");
		goto fail;
	}
	if (max_age_r != NULL)
		*max_age_r = x.max_age;
	r = 0;
fail:
	/* the POST body may hold a token: curl keeps only our pointer to it */
	curl_easy_cleanup(h);
	return r;
}

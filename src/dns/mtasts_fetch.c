/*
 * mtasts_fetch: the policy fetch (see mtasts_fetch.h). One easy handle per
 * call; the body goes into a bounded buffer and the transfer is aborted as
 * soon as it would pass MTASTS_POLICY_MAX.
 */
#include "dns/mtasts_fetch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "dns/mtasts_parse.h"
#include "lib/buf.h"

static size_t
mtasts_fetch_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;

	if (buf_append(b, p, size * nmemb) == -1)
		return 0; /* too large: aborts the transfer */
	return size * nmemb;
}

int
mtasts_fetch(const char *domain, char *const *addrs, size_t naddrs, double timeout, char **body_r,
    size_t *len_r, char *err, size_t errlen)
{
	return mtasts_fetch_ex(domain, addrs, naddrs, timeout, NULL, 0, body_r, len_r, err, errlen);
}

int
mtasts_fetch_ex(const char *domain, char *const *addrs, size_t naddrs, double timeout,
    const char *cafile, unsigned port, char **body_r, size_t *len_r, char *err, size_t errlen)
{
	char url[600], resolve[1024], portstr[16] = "";
	struct curl_slist *rl = NULL;
	struct buf body;
	CURL *c = NULL;
	CURLcode rc;
	long code = 0;
	char *ctype = NULL;
	int ret = -1;
	size_t o;

	*body_r = NULL;
	*len_r = 0;
	buf_init(&body, MTASTS_POLICY_MAX);
	if (port == 0)
		port = 443;
	if (port != 443)
		snprintf(portstr, sizeof(portstr), ":%u", port);
	if ((size_t)snprintf(url, sizeof(url), "https://mta-sts.%s%s/.well-known/mta-sts.txt",
	        domain, portstr) >= sizeof(url)) {
		snprintf(err, errlen, "domain name too long");
		goto fail;
	}
	c = curl_easy_init();
	if (c == NULL) {
		snprintf(err, errlen, "cannot create an HTTPS client");
		goto fail;
	}
	if (naddrs > 0) {
		o = (size_t)snprintf(resolve, sizeof(resolve), "mta-sts.%s:%u:", domain, port);
		for (size_t i = 0; i < naddrs && o < sizeof(resolve); i++) {
			bool v6 = strchr(addrs[i], ':') != NULL;

			o += (size_t)snprintf(resolve + o, sizeof(resolve) - o, "%s%s%s%s",
			    i > 0 ? "," : "", v6 ? "[" : "", addrs[i], v6 ? "]" : "");
		}
		if (o >= sizeof(resolve)) {
			snprintf(err, errlen, "too many addresses");
			goto fail;
		}
		rl = curl_slist_append(NULL, resolve);
		curl_easy_setopt(c, CURLOPT_RESOLVE, rl);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (cafile != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* RFC 8461 3.3: no redirects */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(c, CURLOPT_USERAGENT, "smtpgate-dns");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mtasts_fetch_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url,
		    rc == CURLE_WRITE_ERROR ? "policy larger than 64 KiB" : curl_easy_strerror(rc));
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		snprintf(err, errlen, "%s: HTTP status %ld%s", url, code,
		    code >= 300 && code < 400 ? " (redirects are not followed, RFC 8461 3.3)" : "");
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
	if (ctype == NULL || strncasecmp(ctype, "text/plain", 10) != 0) {
		snprintf(err, errlen, "%s: Content-Type is %s, not text/plain (RFC 8461 3.2)", url,
		    ctype != NULL ? ctype : "missing");
		goto fail;
	}
	*len_r = body.len;
	*body_r = buf_strdup(&body);
	ret = 0;
fail:
	curl_slist_free_all(rl);
	if (c != NULL)
		curl_easy_cleanup(c);
	buf_free(&body);
	return ret;
}

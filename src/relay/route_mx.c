/*
 * route_mx: delivery plans for `route = mx` and the sessions they lead to
 * (see route_mx.h for the rules and how delivery calls it).
 *
 * State shared by the worker threads, each part under its own lock:
 * - a pool of dns_resolvers (a libunbound context is used by one thread at
 *   a time; each keeps its cache between deliveries);
 * - the MTA-STS cache: domain -> {id, mode, mx patterns, fetched at,
 *   max_age}, at most ROUTE_MX_STS_CACHE_MAX entries in memory (expired ones
 *   go first, then the one that expires first), and, with a cache folder,
 *   one file per domain on disk (at most ROUTE_MX_STS_DISK_MAX; evicted
 *   entries stay there and are read back on a miss). The fetch and the
 *   disk I/O run without sts_lock; disk_lock guards only the file count.
 * - one SSL_CTX with DANE enabled, given to every client (ref counted).
 * A plan owns its TLSA data; nothing in it points into the shared state.
 */
#include "relay/route_mx.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "dns/dns_name.h"
#include "dns/mtasts_fetch.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define ROUTE_MX_POOL_MAX 16 /* idle resolvers kept */
#define ROUTE_MX_STS_ADDRS_MAX 8 /* addresses of mta-sts.DOMAIN given to curl */

struct route_mx_sts_entry {
	char domain[ROUTE_MX_NAME_MAX];
	char id[MTASTS_ID_MAX + 1];
	enum route_mx_sts_mode mode;
	unsigned long max_age;
	time_t fetched;
	char *mx[MTASTS_MX_MAX];
	size_t n_mx;
};

struct route_mx {
	struct route_mx_conf conf; /* strings owned */
	struct route_mx_ops ops; /* the real ones where conf had NULL */
	unsigned port;
	SSL_CTX *ctx;
	pthread_mutex_t pool_lock;
	struct dns_resolver *pool[ROUTE_MX_POOL_MAX];
	size_t npool;
	pthread_mutex_t sts_lock;
	struct route_mx_sts_entry *sts;
	size_t nsts;
	pthread_mutex_t disk_lock;
	size_t ndisk; /* policy files in conf.sts_cache_dir (an estimate between scans) */
	time_t disk_scanned; /* the last route_mx_sts_scan */
};

static void route_mx_sts_scan(struct route_mx *mx, time_t now);

/* ---- names ---------------------------------------------------------------- */

const char *
route_mx_tls_name(enum route_mx_tls t)
{
	switch (t) {
	case ROUTE_MX_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case ROUTE_MX_TLS_DANE:
		return "dane";
	case ROUTE_MX_TLS_ENCRYPT:
		return "encrypt";
	case ROUTE_MX_TLS_STS:
		return "mta-sts";
	}
	return "?";
}

const char *
route_mx_sts_mode_name(enum route_mx_sts_mode m)
{
	switch (m) {
	case ROUTE_MX_STS_NONE:
		return "none";
	case ROUTE_MX_STS_TESTING:
		return "testing";
	case ROUTE_MX_STS_ENFORCE:
		return "enforce";
	}
	return "?";
}

/* ---- pure decisions --------------------------------------------------------- */

bool
route_mx_tlsa_is_usable(unsigned usage, unsigned selector, unsigned mtype, size_t len)
{
	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP */
	if (usage != 2 && usage != 3)
		return false;
	if (selector > 1)
		return false;
	switch (mtype) {
	case 0:
		return len > 0 && len <= ROUTE_MX_TLSA_DATA_MAX;
	case 1:
		return len == 32; /* SHA2-256 */
	case 2:
		return len == 64; /* SHA2-512 */
	}
	return false;
}

struct route_mx_decision
route_mx_decide(bool mx_secure, bool addr_secure, enum route_mx_tlsa_state tlsa,
    enum route_mx_sts_mode sts, bool sts_match)
{
	struct route_mx_decision d = {ROUTE_MX_TLS_OPPORTUNISTIC, false, ""};

	/* RFC 7672 2.2: DANE applies only when the MX and address answers
	 * are secure; then it takes precedence over MTA-STS (RFC 8461 2) */
	if (mx_secure && addr_secure) {
		switch (tlsa) {
		case ROUTE_MX_TLSA_FAILED:
			d.skip = true;
			d.why =
			    "TLSA look-up failed for a DNSSEC-secure host (RFC 7672 2.2: not used "
			    "until it answers)";
			return d;
		case ROUTE_MX_TLSA_USABLE:
			d.tls = ROUTE_MX_TLS_DANE;
			d.why = "DANE: STARTTLS required, certificate must match TLSA";
			return d;
		case ROUTE_MX_TLSA_UNUSABLE:
			d.tls = ROUTE_MX_TLS_ENCRYPT;
			d.why = "DANE: only unusable TLSA records: STARTTLS required, no "
			        "authentication (RFC 7672 2.2)";
			return d;
		case ROUTE_MX_TLSA_NONE:
			break;
		}
	}
	switch (sts) {
	case ROUTE_MX_STS_ENFORCE:
		if (!sts_match) {
			d.skip = true;
			d.why =
			    "matches no mx pattern of the enforced MTA-STS policy (RFC 8461 4.1)";
			return d;
		}
		d.tls = ROUTE_MX_TLS_STS;
		d.why = "MTA-STS enforce: STARTTLS required, certificate verified for the MX name";
		return d;
	case ROUTE_MX_STS_TESTING:
		d.why = sts_match ? "MTA-STS testing: opportunistic, failures only reported"
		                  : "MTA-STS testing: matches no mx pattern (reported only)";
		return d;
	case ROUTE_MX_STS_NONE:
		break;
	}
	d.why = "opportunistic STARTTLS";
	return d;
}

/* ---- the real look-ups -------------------------------------------------------- */

static time_t
route_mx_real_now(void *arg)
{
	(void)arg;
	return time(NULL);
}

static uint32_t
route_mx_real_random(void *arg, uint32_t n)
{
	(void)arg;
	return n > 1 ? arc4random_uniform(n) : 0;
}

static struct dns_resolver *
route_mx_resolver_get(struct route_mx *mx, char *err, size_t errlen)
{
	struct dns_resolver *r = NULL;
	struct dns_resolver_opts o = {
	    mx->conf.resolver, mx->conf.dnssec_anchor, mx->conf.dns_timeout};

	pthread_mutex_lock(&mx->pool_lock);
	if (mx->npool > 0)
		r = mx->pool[--mx->npool];
	pthread_mutex_unlock(&mx->pool_lock);
	if (r == NULL)
		r = dns_resolver_new(&o, err, errlen);
	return r;
}

static void
route_mx_resolver_put(struct route_mx *mx, struct dns_resolver *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&mx->pool_lock);
	if (mx->npool < ROUTE_MX_POOL_MAX) {
		mx->pool[mx->npool++] = r;
		r = NULL;
	}
	pthread_mutex_unlock(&mx->pool_lock);
	dns_resolver_free(r);
}

/* One look-up: the injected one, or the resolver of this call. */
struct route_mx_call {
	struct route_mx *mx;
	struct dns_resolver *r;
	bool timed_out; /* r gave up on a query: not pooled again (it now fails fast) */
};

static void
route_mx_query(struct route_mx_call *q, const char *name, int type, struct dns_answer *a)
{
	if (q->mx->conf.ops != NULL && q->mx->conf.ops->query != NULL) {
		memset(a, 0, sizeof(*a));
		q->mx->conf.ops->query(q->mx->conf.ops->arg, name, type, a);
		return;
	}
	dns_query(q->r, name, type, a);
	if (a->status == DNS_TIMEOUT)
		q->timed_out = true;
}

/* ---- new/free ----------------------------------------------------------------- */

static char *
route_mx_strdup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct route_mx *
route_mx_new(const struct route_mx_conf *rc, char *err, size_t errlen)
{
	struct route_mx *mx = xcalloc(1, sizeof(*mx));
	const struct route_mx_ops *ops = rc->ops;

	mx->conf = *rc;
	mx->conf.resolver = route_mx_strdup(rc->resolver);
	mx->conf.dnssec_anchor = route_mx_strdup(rc->dnssec_anchor);
	mx->conf.port = xstrdup(rc->port != NULL ? rc->port : ROUTE_MX_PORT_DEFAULT);
	mx->conf.cafile = route_mx_strdup(rc->cafile);
	mx->conf.sts_port = route_mx_strdup(rc->sts_port);
	mx->conf.helo = route_mx_strdup(rc->helo);
	mx->conf.sts_cache_dir = route_mx_strdup(rc->sts_cache_dir);
	if (mx->conf.dns_timeout <= 0)
		mx->conf.dns_timeout = ROUTE_MX_DNS_TIMEOUT_DEFAULT;
	if (mx->conf.sts_timeout <= 0)
		mx->conf.sts_timeout = ROUTE_MX_STS_TIMEOUT_DEFAULT;
	mx->ops.now = ops != NULL && ops->now != NULL ? ops->now : route_mx_real_now;
	mx->ops.random = ops != NULL && ops->random != NULL ? ops->random : route_mx_real_random;
	mx->ops.arg = ops != NULL ? ops->arg : NULL;
	pthread_mutex_init(&mx->pool_lock, NULL);
	pthread_mutex_init(&mx->sts_lock, NULL);
	pthread_mutex_init(&mx->disk_lock, NULL);
	{
		char *end;
		long p = strtol(mx->conf.port, &end, 10);

		if (*end != '\0' || p < 1 || p > 65535) {
			snprintf(err, errlen, "mx_port %s: not a port number", mx->conf.port);
			goto fail;
		}
		mx->port = (unsigned)p;
		if (mx->conf.sts_port != NULL &&
		    ((p = strtol(mx->conf.sts_port, &end, 10)) < 1 || p > 65535 || *end != '\0')) {
			snprintf(
			    err, errlen, "mta_sts_port %s: not a port number", mx->conf.sts_port);
			goto fail;
		}
	}
	mx->ctx = SSL_CTX_new(TLS_client_method());
	if (mx->ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		goto fail;
	}
	SSL_CTX_set_options(mx->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_min_proto_version(mx->ctx, TLS1_2_VERSION); /* DESIGN 4 */
	if (SSL_CTX_dane_enable(mx->ctx) <= 0) {
		snprintf(err, errlen, "cannot enable DANE in the TLS context");
		goto fail;
	}
	if (mx->conf.cafile != NULL) {
		if (SSL_CTX_load_verify_locations(mx->ctx, mx->conf.cafile, NULL) != 1) {
			snprintf(err, errlen, "cannot load CA file %s", mx->conf.cafile);
			goto fail;
		}
	} else {
		(void)SSL_CTX_set_default_verify_paths(mx->ctx);
	}
	if (ops == NULL || ops->query == NULL) {
		/* a bad resolver or anchor is a configuration error: found now */
		struct dns_resolver *r = route_mx_resolver_get(mx, err, errlen);

		if (r == NULL)
			goto fail;
		route_mx_resolver_put(mx, r);
	}
	if (mx->conf.sts_cache_dir != NULL)
		route_mx_sts_scan(mx, mx->ops.now(mx->ops.arg));
	return mx;
fail:
	route_mx_free(mx);
	return NULL;
}

static void
route_mx_sts_entry_clear(struct route_mx_sts_entry *e)
{
	for (size_t i = 0; i < e->n_mx; i++)
		free(e->mx[i]);
	e->n_mx = 0;
}

void
route_mx_free(struct route_mx *mx)
{
	if (mx == NULL)
		return;
	for (size_t i = 0; i < mx->npool; i++)
		dns_resolver_free(mx->pool[i]);
	for (size_t i = 0; i < mx->nsts; i++)
		route_mx_sts_entry_clear(&mx->sts[i]);
	free(mx->sts);
	SSL_CTX_free(mx->ctx);
	pthread_mutex_destroy(&mx->pool_lock);
	pthread_mutex_destroy(&mx->sts_lock);
	pthread_mutex_destroy(&mx->disk_lock);
	free((char *)mx->conf.resolver);
	free((char *)mx->conf.dnssec_anchor);
	free((char *)mx->conf.port);
	free((char *)mx->conf.cafile);
	free((char *)mx->conf.sts_port);
	free((char *)mx->conf.helo);
	free((char *)mx->conf.sts_cache_dir);
	free(mx);
}

void
route_mx_plan_free(struct route_mx_plan *plan)
{
	if (plan == NULL)
		return;
	for (size_t i = 0; i < plan->nhosts; i++) {
		struct route_mx_host *h = &plan->hosts[i];

		for (size_t k = 0; k < h->ntlsa; k++)
			free((unsigned char *)h->tlsa[k].data);
		h->ntlsa = 0;
	}
	plan->nhosts = 0;
}

/* ---- helpers -------------------------------------------------------------------- */

/* snprintf where cutting a long reason short is fine */
static void route_mx_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
route_mx_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static void route_mx_note(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
route_mx_note(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 3 >= size)
		return;
	if (used > 0) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	(void)vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* Copies a DNS name without its final dot, lower case. */
static void
route_mx_name_copy(char *out, size_t size, const char *name)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[n] = '\0';
}

static const char *
route_mx_answer_text(const struct dns_answer *a)
{
	return a->status == DNS_BOGUS && a->why_bogus != NULL ? a->why_bogus
	                                                      : dns_status_name(a->status);
}

static bool
route_mx_addr_add(struct route_mx *mx, struct route_mx_host *h, const char *text)
{
	struct route_mx_addr *ad;

	if (h->naddrs >= ROUTE_MX_ADDRS_MAX)
		return false;
	ad = &h->addrs[h->naddrs];
	memset(ad, 0, sizeof(*ad));
	if (strchr(text, ':') == NULL) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ad->ss;

		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return false;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)mx->port);
		ad->sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ad->ss;

		if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			return false;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)mx->port);
		ad->sslen = sizeof(*sin6);
	}
	snprintf(ad->text, sizeof(ad->text), "%s", text);
	h->naddrs++;
	return true;
}

/*
 * The A and AAAA records of h. Returns the worst DNS outcome as text in
 * why (for a host without addresses). The security is secure only when
 * both answers are (a secure NODATA for AAAA counts).
 */
static void
route_mx_host_addrs(struct route_mx *mx, struct route_mx_call *q, struct route_mx_host *h)
{
	static const int types[] = {DNS_TYPE_A, DNS_TYPE_AAAA};
	bool secure = true, bogus = false;
	char why[200] = "";

	for (size_t t = 0; t < 2; t++) {
		struct dns_answer a;

		route_mx_query(q, h->name, types[t], &a);
		if (a.status == DNS_BOGUS || a.security == DNS_SEC_BOGUS)
			bogus = true;
		if (a.security != DNS_SECURE)
			secure = false;
		if (a.status == DNS_OK && a.canonname != NULL && !h->cname) {
			h->cname = true;
			/* RFC 7672 2.2.2: a secure CNAME expansion is the base */
			if (a.security == DNS_SECURE)
				route_mx_name_copy(h->tlsa_base, sizeof(h->tlsa_base), a.canonname);
		}
		for (size_t i = 0; a.status == DNS_OK && i < a.n; i++)
			(void)route_mx_addr_add(mx, h, a.rr[i].text);
		route_mx_note(
		    why, sizeof(why), "%s %s", dns_type_name(types[t]), route_mx_answer_text(&a));
		dns_answer_free(&a);
	}
	h->addr_security = bogus ? DNS_SEC_BOGUS : secure ? DNS_SECURE : DNS_INSECURE;
	if (bogus) {
		h->skip = true;
		h->naddrs = 0;
		snprintf(h->reason, sizeof(h->reason),
		    "address records fail DNSSEC validation (%s)", why);
	} else if (h->naddrs == 0) {
		h->skip = true;
		snprintf(h->reason, sizeof(h->reason), "no address (%s)", why);
	}
}

/* TLSA at _PORT._tcp.BASE (RFC 7672 2.2, 3.1). */
static enum route_mx_tlsa_state
route_mx_host_tlsa(struct route_mx *mx, struct route_mx_call *q, struct route_mx_host *h)
{
	char name[ROUTE_MX_NAME_MAX + 16];
	struct dns_answer a;
	enum route_mx_tlsa_state st;

	snprintf(name, sizeof(name), "_%u._tcp.%s", mx->port, h->tlsa_base);
	route_mx_query(q, name, DNS_TYPE_TLSA, &a);
	switch (a.status) {
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		st = ROUTE_MX_TLSA_NONE;
		break;
	case DNS_OK:
		if (a.security != DNS_SECURE) {
			/* an insecure TLSA RRset is not DANE (RFC 7672 2.2) */
			st = ROUTE_MX_TLSA_NONE;
			break;
		}
		st = ROUTE_MX_TLSA_UNUSABLE;
		for (size_t i = 0; i < a.n && h->ntlsa < ROUTE_MX_TLSA_MAX; i++) {
			const struct dns_rr *rr = &a.rr[i];
			struct client_tlsa *t = &h->tlsa[h->ntlsa];
			unsigned char *d;

			if (!route_mx_tlsa_is_usable(
			        rr->usage, rr->selector, rr->mtype, rr->data_len))
				continue;
			d = xmalloc(rr->data_len + 1);
			for (size_t k = 0; k < rr->data_len; k++) {
				unsigned v;

				if (sscanf(rr->text + 2 * k, "%2x", &v) != 1)
					v = 0;
				d[k] = (unsigned char)v;
			}
			t->usage = (unsigned char)rr->usage;
			t->selector = (unsigned char)rr->selector;
			t->mtype = (unsigned char)rr->mtype;
			t->data = d;
			t->len = rr->data_len;
			h->ntlsa++;
			st = ROUTE_MX_TLSA_USABLE;
		}
		break;
	default:
		st = ROUTE_MX_TLSA_FAILED;
		route_mx_note(
		    h->reason, sizeof(h->reason), "TLSA %s: %s", name, route_mx_answer_text(&a));
		break;
	}
	dns_answer_free(&a);
	return st;
}

/* ---- MTA-STS -------------------------------------------------------------------- */

/* Expired (RFC 8461 3.2 max_age), or fetched in the future (a clock set back by
 * more than a day: the age is unknown). */
static bool
route_mx_sts_is_expired(time_t fetched, unsigned long max_age, time_t now)
{
	return now >= fetched + (time_t)max_age || now < fetched - 86400;
}

/* The entry for domain, or NULL; drops it when expired. Under sts_lock. */
static struct route_mx_sts_entry *
route_mx_sts_find(struct route_mx *mx, const char *domain, time_t now)
{
	for (size_t i = 0; i < mx->nsts; i++) {
		struct route_mx_sts_entry *e = &mx->sts[i];

		if (strcmp(e->domain, domain) != 0)
			continue;
		if (route_mx_sts_is_expired(e->fetched, e->max_age, now)) {
			route_mx_sts_entry_clear(e);
			mx->sts[i] = mx->sts[--mx->nsts];
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Stores a fetched policy (replacing the domain's entry). Under sts_lock. */
static struct route_mx_sts_entry *
route_mx_sts_store(struct route_mx *mx, const char *domain, const char *id,
    const struct mtasts_policy *p, time_t now)
{
	struct route_mx_sts_entry *e = NULL;

	for (size_t i = 0; i < mx->nsts && e == NULL; i++)
		if (strcmp(mx->sts[i].domain, domain) == 0)
			e = &mx->sts[i];
	if (e == NULL && mx->nsts < ROUTE_MX_STS_CACHE_MAX) {
		mx->sts = xrealloc(mx->sts, (mx->nsts + 1) * sizeof(*mx->sts));
		e = &mx->sts[mx->nsts++];
		memset(e, 0, sizeof(*e));
	}
	if (e == NULL) {
		/* full: the entry that expires first makes room */
		e = &mx->sts[0];
		for (size_t i = 1; i < mx->nsts; i++)
			if (mx->sts[i].fetched + (time_t)mx->sts[i].max_age <
			    e->fetched + (time_t)e->max_age)
				e = &mx->sts[i];
	}
	route_mx_sts_entry_clear(e);
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->mode = strcmp(p->mode, "enforce") == 0 ? ROUTE_MX_STS_ENFORCE
	    : strcmp(p->mode, "testing") == 0     ? ROUTE_MX_STS_TESTING
	                                          : ROUTE_MX_STS_NONE;
	e->max_age = p->max_age;
	e->fetched = now;
	for (size_t i = 0; i < p->n_mx && i < MTASTS_MX_MAX; i++)
		e->mx[e->n_mx++] = xstrdup(p->mx[i]);
	return e;
}

/* ---- MTA-STS: the disk cache (doc/spool.md, "mta-sts/") --------------------------- */

/*
 * The second level of the cache, so that a policy survives a restart (RFC
 * 8461 5.1, 10.2: the protection against a hidden TXT record or a blocked
 * fetch rests on the cached policy). One file per domain, DIR/DOMAIN, a
 * JSON object: {"smtpgate-mta-sts": 1, "domain", "id", "fetched", "policy"}
 * where policy is the text as fetched (parsed again when read, by the same
 * parser). Written with fs_write_atomic (temporary ".DOMAIN.tmp-XXXXXX"
 * in DIR, fsync, rename, fsync DIR); a temporary name starts with a dot,
 * which no domain does. A file that is unreadable, does not parse or has expired is
 * ignored (overwritten by the next fetch, removed by the next scan).
 */

#define ROUTE_MX_STS_TMP_STALE 3600 /* seconds before a temporary file is a crash's leftover */
#define ROUTE_MX_STS_RESCAN 600 /* seconds between scans when the folder is full */

/* A lower-case DNS name that is safe as a file name in the cache folder:
 * letters, digits, '-', '_' and '.', no leading dot, no empty label (so
 * never "." or ".."), no '/'. Anything else is not cached on disk. */
static bool
route_mx_sts_name_is_safe(const char *domain)
{
	size_t n = strlen(domain);

	if (n == 0 || n >= ROUTE_MX_NAME_MAX || domain[0] == '.' || strstr(domain, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = domain[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		        c == '.'))
			return false;
	}
	return dns_name_is_valid(domain);
}

static bool
route_mx_sts_id_is_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MTASTS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]))
			return false; /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
	return true;
}

/*
 * Reads and checks the policy file text of domain: 0 with *id_r, *fetched_r
 * and p_r filled in (p_r freed by the caller in both cases), -1 with a static
 * *why_r. Pure but for the clock value now.
 */
int
route_mx_sts_file_parse(const char *domain, const char *text, size_t len, time_t now,
    char id_r[MTASTS_ID_MAX + 1], time_t *fetched_r, struct mtasts_policy *p_r, const char **why_r)
{
	json_t *o = NULL, *v;
	json_error_t je;
	const char *errstr;
	size_t line;
	int ret = -1;

	memset(p_r, 0, sizeof(*p_r));
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o)) {
		*why_r = "not a JSON object";
		goto fail;
	}
	v = json_object_get(o, "smtpgate-mta-sts");
	if (!json_is_integer(v) || json_integer_value(v) != ROUTE_MX_STS_FILE_VERSION) {
		*why_r = "unknown version";
		goto fail;
	}
	v = json_object_get(o, "domain");
	if (!json_is_string(v) || strcmp(json_string_value(v), domain) != 0) {
		*why_r = "domain does not match the file name";
		goto fail;
	}
	v = json_object_get(o, "id");
	if (!json_is_string(v) || !route_mx_sts_id_is_valid(json_string_value(v))) {
		*why_r = "bad id";
		goto fail;
	}
	snprintf(id_r, MTASTS_ID_MAX + 1, "%s", json_string_value(v));
	v = json_object_get(o, "fetched");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		*why_r = "bad fetched";
		goto fail;
	}
	*fetched_r = (time_t)json_integer_value(v);
	v = json_object_get(o, "policy");
	if (!json_is_string(v) || json_string_length(v) > MTASTS_POLICY_MAX) {
		*why_r = "bad policy";
		goto fail;
	}
	if (mtasts_policy_parse(json_string_value(v), json_string_length(v), p_r, &errstr, &line) ==
	    -1) {
		*why_r = "the policy does not parse";
		goto fail;
	}
	if (route_mx_sts_is_expired(*fetched_r, p_r->max_age, now)) {
		*why_r = "expired";
		goto fail;
	}
	ret = 0;
fail:
	json_decref(o);
	return ret;
}

char *
route_mx_sts_file_format(
    const char *domain, const char *id, time_t fetched, const char *body, size_t len)
{
	json_t *o, *pol = json_stringn(body, len); /* NULL when not UTF-8 */
	char *text;

	if (pol == NULL)
		return NULL;
	o = json_pack("{s:i, s:s, s:s, s:I, s:o}", "smtpgate-mta-sts", ROUTE_MX_STS_FILE_VERSION,
	    "domain", domain, "id", id, "fetched", (json_int_t)fetched, "policy", pol);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* DIR/DOMAIN into buf; false when the name is not safe or too long. */
static bool
route_mx_sts_path(const struct route_mx *mx, const char *domain, char *buf, size_t size)
{
	int n;

	if (mx->conf.sts_cache_dir == NULL || !route_mx_sts_name_is_safe(domain))
		return false;
	n = snprintf(buf, size, "%s/%s", mx->conf.sts_cache_dir, domain);
	return n > 0 && (size_t)n < size;
}

/*
 * The text of path, a regular file of at most ROUTE_MX_STS_FILE_MAX bytes,
 * malloc'd and NUL-terminated; NULL otherwise. Not through a symbolic link,
 * and never blocking on a FIFO someone put there.
 */
static char *
route_mx_sts_read(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	char *text = NULL;
	size_t got = 0;

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > ROUTE_MX_STS_FILE_MAX)
		goto out;
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shorter than fstat said: parsed as it is */
		got += (size_t)r;
	}
	text[got] = '\0';
	*len_r = got;
out:
	close(fd);
	return text;
}

/*
 * The unexpired policy file of domain: 0 with id_r, fetched_r and p_r (freed
 * by the caller in both cases), -1 when there is none or it is unusable;
 * *unusable_r then says whether a file was read and rejected (corrupt or
 * expired), as opposed to absent or unreadable.
 */
static int
route_mx_sts_load(struct route_mx *mx, const char *domain, time_t now, char id_r[MTASTS_ID_MAX + 1],
    time_t *fetched_r, struct mtasts_policy *p_r, bool *unusable_r)
{
	char path[PATH_MAX], *text;
	size_t len = 0;
	const char *why;
	int ret;

	memset(p_r, 0, sizeof(*p_r));
	*unusable_r = false;
	if (!route_mx_sts_path(mx, domain, path, sizeof(path)))
		return -1;
	text = route_mx_sts_read(path, &len);
	if (text == NULL)
		return -1; /* ENOENT mostly; anything else: as if absent */
	ret = route_mx_sts_file_parse(domain, text, len, now, id_r, fetched_r, p_r, &why);
	*unusable_r = ret == -1;
	free(text);
	return ret;
}

/*
 * Counts the policy files of the cache folder and removes what is of no use:
 * expired or corrupt policy files and temporary files older than
 * ROUTE_MX_STS_TMP_STALE. Other names are left alone. Under disk_lock (or
 * before any thread runs).
 */
static void
route_mx_sts_scan(struct route_mx *mx, time_t now)
{
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	mx->disk_scanned = now;
	d = opendir(mx->conf.sts_cache_dir);
	if (d == NULL) {
		mx->ndisk = 0;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char id[MTASTS_ID_MAX + 1];
		struct mtasts_policy p;
		time_t fetched;
		struct stat st;
		bool unusable;

		if (de->d_name[0] == '.' && strstr(de->d_name, FS_TMP_MARK) != NULL) {
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode) && now - st.st_mtime > ROUTE_MX_STS_TMP_STALE)
				(void)unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!route_mx_sts_name_is_safe(de->d_name))
			continue;
		if (route_mx_sts_load(mx, de->d_name, now, id, &fetched, &p, &unusable) == 0)
			n++;
		else if (unusable)
			(void)unlinkat(dirfd(d), de->d_name, 0); /* corrupt or expired */
		mtasts_policy_free(&p);
	}
	closedir(d);
	mx->ndisk = n;
}

/*
 * Saves a fetched, valid policy of domain (the body as fetched). Failures
 * are not errors (the policy is cached in memory): they go to note.
 */
static void
route_mx_sts_save(struct route_mx *mx, const char *domain, const char *id, time_t fetched,
    const char *body, size_t len, char *note, size_t notelen)
{
	char path[PATH_MAX], *text = NULL;
	struct stat st;
	bool exists, created = false;
	size_t max =
	    mx->conf.sts_cache_files > 0 ? mx->conf.sts_cache_files : ROUTE_MX_STS_DISK_MAX;

	if (mx->conf.sts_cache_dir == NULL)
		return;
	if (!route_mx_sts_path(mx, domain, path, sizeof(path))) {
		route_mx_note(note, notelen,
		    "MTA-STS policy kept in memory only (%s: not a safe file name)", domain);
		return;
	}
	text = route_mx_sts_file_format(domain, id, fetched, body, len);
	if (text == NULL) {
		route_mx_note(note, notelen, "MTA-STS policy kept in memory only (not UTF-8 text)");
		return;
	}
	pthread_mutex_lock(&mx->disk_lock);
	exists = lstat(path, &st) == 0;
	if (!exists && mx->ndisk >= max && fetched - mx->disk_scanned >= ROUTE_MX_STS_RESCAN)
		route_mx_sts_scan(mx, fetched); /* expired files make room */
	if (!exists && mx->ndisk >= max) {
		pthread_mutex_unlock(&mx->disk_lock);
		route_mx_note(note, notelen,
		    "MTA-STS policy kept in memory only (%zu policy files on disk, the limit)",
		    max);
		free(text);
		return;
	}
	if (!exists)
		mx->ndisk++; /* reserved; given back when the write fails */
	pthread_mutex_unlock(&mx->disk_lock);
	if (mkdir(mx->conf.sts_cache_dir, 0700) == 0)
		created = true;
	else if (errno != EEXIST)
		goto fail;
	if (created) {
		/* the new folder's entry in the spool, durable too */
		char *parent = fs_dirname(mx->conf.sts_cache_dir);
		int r = fs_fsync_dir(parent);

		free(parent);
		if (r == -1)
			goto fail;
	}
	if (fs_write_atomic(path, text, strlen(text), 0600) == -1)
		goto fail;
	free(text);
	return;
fail:
	route_mx_note(
	    note, notelen, "MTA-STS policy kept in memory only (%s: %s)", path, strerror(errno));
	if (!exists) {
		pthread_mutex_lock(&mx->disk_lock);
		if (mx->ndisk > 0)
			mx->ndisk--;
		pthread_mutex_unlock(&mx->disk_lock);
	}
	free(text);
}

static int
route_mx_sts_fetch(struct route_mx *mx, struct route_mx_call *q, const char *domain, char **body_r,
    size_t *len_r, char *err, size_t errlen)
{
	char host[ROUTE_MX_NAME_MAX + 16], *addrs[ROUTE_MX_STS_ADDRS_MAX];
	struct dns_answer a4, a6;
	size_t n = 0;
	int rc;

	if (mx->conf.ops != NULL && mx->conf.ops->fetch != NULL)
		return mx->conf.ops->fetch(mx->conf.ops->arg, domain, body_r, len_r, err, errlen);
	/* our resolver finds mta-sts.DOMAIN, as it finds the MX */
	snprintf(host, sizeof(host), "mta-sts.%s", domain);
	route_mx_query(q, host, DNS_TYPE_A, &a4);
	route_mx_query(q, host, DNS_TYPE_AAAA, &a6);
	for (size_t i = 0; i < a4.n && n < ROUTE_MX_STS_ADDRS_MAX; i++)
		addrs[n++] = a4.rr[i].text;
	for (size_t i = 0; i < a6.n && n < ROUTE_MX_STS_ADDRS_MAX; i++)
		addrs[n++] = a6.rr[i].text;
	if (n == 0) {
		snprintf(err, errlen, "%s has no address (A %s, AAAA %s)", host,
		    dns_status_name(a4.status), dns_status_name(a6.status));
		rc = -1;
	} else {
		rc = mtasts_fetch_ex(domain, addrs, n, mx->conf.sts_timeout, mx->conf.cafile,
		    mx->conf.sts_port != NULL ? (unsigned)atoi(mx->conf.sts_port) : 0, body_r,
		    len_r, err, errlen);
	}
	dns_answer_free(&a4);
	dns_answer_free(&a6);
	return rc;
}

/*
 * RFC 8461 3 and 5: the policy in force for the plan's domain; sets
 * plan->sts_* and each host's sts_match.
 *
 * The cache has two levels: memory (ROUTE_MX_STS_CACHE_MAX domains), then
 * the disk (conf.sts_cache_dir), read on a miss in memory, e.g. after a
 * restart. A policy read from disk then counts as cached: the same id is
 * not fetched again, a new id is, and it stays in force, unexpired, when
 * the TXT record is gone or the fetch fails (RFC 8461 5.1).
 */
static void
route_mx_sts(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan)
{
	char name[ROUTE_MX_NAME_MAX + 16], id[MTASTS_ID_MAX + 1] = "", err[300] = "";
	struct route_mx_sts_entry *e;
	struct dns_answer a;
	size_t nrec = 0;
	const char *errstr;
	char *body = NULL;
	size_t len = 0;
	time_t now, saved_at = 0;

	snprintf(name, sizeof(name), "_mta-sts.%s", plan->domain);
	route_mx_query(q, name, DNS_TYPE_TXT, &a);
	for (size_t i = 0; a.status == DNS_OK && i < a.n; i++) {
		char tmp[MTASTS_ID_MAX + 1];

		if (!mtasts_is_record(a.rr[i].text, a.rr[i].len))
			continue;
		nrec++;
		if (mtasts_record_parse(a.rr[i].text, a.rr[i].len, tmp, &errstr) == 0)
			memcpy(id, tmp, sizeof(id));
		else
			snprintf(err, sizeof(err), "%s: %s", name, errstr);
	}
	if (nrec > 1) {
		/* RFC 8461 3.1: several records: as if none */
		id[0] = '\0';
		route_mx_fmt(err, sizeof(err), "%s: %zu STSv1 records", name, nrec);
	} else if (a.status != DNS_OK && a.status != DNS_NXDOMAIN && a.status != DNS_NODATA) {
		snprintf(err, sizeof(err), "%s: %s", name, route_mx_answer_text(&a));
	}
	dns_answer_free(&a);

	now = mx->ops.now(mx->ops.arg);
	pthread_mutex_lock(&mx->sts_lock);
	e = route_mx_sts_find(mx, plan->domain, now);
	if (e == NULL && mx->conf.sts_cache_dir != NULL) {
		/* not in memory: the disk (read without the lock) */
		char did[MTASTS_ID_MAX + 1];
		struct mtasts_policy dp;
		time_t fetched;
		bool unusable;

		pthread_mutex_unlock(&mx->sts_lock);
		if (route_mx_sts_load(mx, plan->domain, now, did, &fetched, &dp, &unusable) == 0) {
			pthread_mutex_lock(&mx->sts_lock);
			/* another thread may have stored it meanwhile: that one is newer */
			e = route_mx_sts_find(mx, plan->domain, now);
			if (e == NULL) {
				e = route_mx_sts_store(mx, plan->domain, did, &dp, fetched);
				plan->sts_from_disk = true;
			}
		} else {
			pthread_mutex_lock(&mx->sts_lock);
			e = route_mx_sts_find(mx, plan->domain, now);
		}
		mtasts_policy_free(&dp);
	}
	if (id[0] != '\0' && (e == NULL || strcmp(e->id, id) != 0)) {
		char ferr[400] = "";
		size_t line = 0;
		struct mtasts_policy p;

		/* a new or changed id: fetch without the lock */
		pthread_mutex_unlock(&mx->sts_lock);
		memset(&p, 0, sizeof(p));
		if (route_mx_sts_fetch(mx, q, plan->domain, &body, &len, ferr, sizeof(ferr)) ==
		    -1) {
			free(body);
			body = NULL;
			if (ferr[0] == '\0')
				snprintf(ferr, sizeof(ferr), "fetch failed");
		} else if (mtasts_policy_parse(body, len, &p, &errstr, &line) == -1)
			snprintf(ferr, sizeof(ferr), "policy line %zu: %s", line, errstr);
		now = mx->ops.now(mx->ops.arg);
		pthread_mutex_lock(&mx->sts_lock);
		if (ferr[0] == '\0') {
			e = route_mx_sts_store(mx, plan->domain, id, &p, now);
			plan->sts_from_disk = false;
			saved_at = now; /* written to disk below, without the lock */
		} else {
			e = route_mx_sts_find(mx, plan->domain, now);
			/* RFC 8461 5.1: a failed fetch keeps the cached policy */
			snprintf(plan->sts_note, sizeof(plan->sts_note),
			    "MTA-STS policy id %s not fetched (%s): %s", id, ferr,
			    e != NULL ? "using the cached policy" : "delivering without MTA-STS");
		}
		mtasts_policy_free(&p);
	} else if (e != NULL) {
		plan->sts_cached = true;
		if (id[0] == '\0')
			snprintf(plan->sts_note, sizeof(plan->sts_note),
			    "no MTA-STS record%s%s; the cached policy holds until it expires",
			    err[0] ? ": " : "", err);
	} else if (err[0] != '\0') {
		snprintf(plan->sts_note, sizeof(plan->sts_note), "%s", err);
	}
	if (e != NULL) {
		plan->sts_mode = e->mode;
		snprintf(plan->sts_id, sizeof(plan->sts_id), "%s", e->id);
		for (size_t i = 0; i < plan->nhosts; i++) {
			struct route_mx_host *h = &plan->hosts[i];

			h->sts_match = false;
			for (size_t k = 0; k < e->n_mx && !h->sts_match; k++)
				h->sts_match = mtasts_mx_matches(e->mx[k], h->name);
		}
	}
	pthread_mutex_unlock(&mx->sts_lock);
	if (saved_at != 0)
		route_mx_sts_save(mx, plan->domain, id, saved_at, body, len, plan->sts_note,
		    sizeof(plan->sts_note));
	free(body);
}

/* ---- the plan ------------------------------------------------------------------- */

/* RFC 5321 5.1: by preference, equal preferences in random order. */
static void
route_mx_sort(struct route_mx *mx, struct dns_rr **v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct dns_rr *x = v[i];
		size_t j = i;

		for (; j > 0 && v[j - 1]->pref > x->pref; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	for (size_t i = 0; i < n;) {
		size_t k = i + 1;

		while (k < n && v[k]->pref == v[i]->pref)
			k++;
		for (size_t m = k - i; m > 1; m--) {
			size_t r = i + mx->ops.random(mx->ops.arg, (uint32_t)m);
			struct dns_rr *t = v[i + m - 1];

			v[i + m - 1] = v[r];
			v[r] = t;
		}
		i = k;
	}
}

int
route_mx_resolve(
    struct route_mx *mx, const char *domain, struct route_mx_plan *plan_r, char *err, size_t errlen)
{
	struct route_mx_call q = {mx, NULL, false};
	struct dns_answer a;
	struct dns_rr *v[DNS_RR_MAX];
	size_t n = 0, nnull = 0, usable = 0;
	bool mx_secure;
	int ret = -1;

	memset(plan_r, 0, sizeof(*plan_r));
	memset(&a, 0, sizeof(a));
	route_mx_name_copy(plan_r->domain, sizeof(plan_r->domain), domain);
	if (!dns_name_is_valid(plan_r->domain)) {
		snprintf(err, errlen, "%s: not a domain name", domain);
		plan_r->permanent = true;
		return -1;
	}
	if (mx->conf.ops == NULL || mx->conf.ops->query == NULL) {
		q.r = route_mx_resolver_get(mx, err, errlen);
		if (q.r == NULL)
			return -1;
	}
	route_mx_query(&q, plan_r->domain, DNS_TYPE_MX, &a);
	plan_r->mx_security = a.security;
	switch (a.status) {
	case DNS_OK:
		break;
	case DNS_NODATA:
		break;
	case DNS_NXDOMAIN:
		/* RFC 5321 5.1: a name that does not exist is a permanent error */
		snprintf(err, errlen, "domain %s does not exist (NXDOMAIN)", plan_r->domain);
		plan_r->permanent = true;
		goto out;
	case DNS_BOGUS:
		snprintf(err, errlen, "MX of %s fails DNSSEC validation: %s", plan_r->domain,
		    a.why_bogus != NULL ? a.why_bogus : "bogus");
		goto out;
	default:
		snprintf(err, errlen, "MX look-up for %s: %s", plan_r->domain,
		    dns_status_name(a.status));
		goto out;
	}
	if (a.canonname != NULL)
		route_mx_note(plan_r->notes, sizeof(plan_r->notes), "%s is an alias of %s",
		    plan_r->domain, a.canonname);
	for (size_t i = 0; a.status == DNS_OK && i < a.n; i++) {
		if (strcmp(a.rr[i].text, ".") == 0)
			nnull++;
		else
			v[n++] = &a.rr[i];
	}
	if (nnull > 0 && n == 0) {
		/* RFC 7505 3: "0 ." is an explicit "no mail here" */
		snprintf(err, errlen, "domain %s does not accept mail (null MX, RFC 7505)",
		    plan_r->domain);
		plan_r->permanent = true;
		goto out;
	}
	if (nnull > 0)
		route_mx_note(plan_r->notes, sizeof(plan_r->notes),
		    "null MX beside other MX records (RFC 7505 3 forbids it): ignored");
	mx_secure = a.security == DNS_SECURE;
	if (n == 0) {
		/* RFC 5321 5.1: no MX: the domain is its own implicit MX */
		struct route_mx_host *h = &plan_r->hosts[0];

		plan_r->implicit_mx = true;
		plan_r->nhosts = 1;
		snprintf(h->name, sizeof(h->name), "%s", plan_r->domain);
		h->implicit = true;
	} else {
		route_mx_sort(mx, v, n);
		if (n > ROUTE_MX_HOSTS_MAX) {
			plan_r->mx_truncated = true;
			route_mx_note(plan_r->notes, sizeof(plan_r->notes),
			    "%zu MX records; only the first %d are used", n, ROUTE_MX_HOSTS_MAX);
			n = ROUTE_MX_HOSTS_MAX;
		}
		for (size_t i = 0; i < n; i++) {
			struct route_mx_host *h = &plan_r->hosts[plan_r->nhosts++];

			route_mx_name_copy(h->name, sizeof(h->name), v[i]->text);
			h->pref = v[i]->pref;
		}
	}
	for (size_t i = 0; i < plan_r->nhosts; i++) {
		struct route_mx_host *h = &plan_r->hosts[i];

		snprintf(h->tlsa_base, sizeof(h->tlsa_base), "%s", h->name);
		route_mx_host_addrs(mx, &q, h);
		if (h->cname)
			route_mx_note(plan_r->notes, sizeof(plan_r->notes),
			    "MX %s is a CNAME (RFC 5321 5.1: it should not be); followed", h->name);
	}
	if (plan_r->implicit_mx && plan_r->hosts[0].naddrs == 0 &&
	    plan_r->hosts[0].addr_security != DNS_SEC_BOGUS) {
		/* no MX and no address: not a mail domain (RFC 5321 5.1) */
		bool temp = strstr(plan_r->hosts[0].reason, "servfail") != NULL ||
		    strstr(plan_r->hosts[0].reason, "timeout") != NULL;

		snprintf(err, errlen, "domain %s has no MX and no address (%s)", plan_r->domain,
		    plan_r->hosts[0].reason);
		plan_r->permanent = !temp;
		goto out;
	}
	if (!mx->conf.no_mta_sts)
		route_mx_sts(mx, &q, plan_r);
	for (size_t i = 0; i < plan_r->nhosts; i++) {
		struct route_mx_host *h = &plan_r->hosts[i];
		enum route_mx_tlsa_state tlsa = ROUTE_MX_TLSA_NONE;
		bool addr_secure = h->addr_security == DNS_SECURE;
		struct route_mx_decision d;

		if (h->skip)
			continue;
		if (!mx->conf.no_dane && mx_secure && addr_secure)
			tlsa = route_mx_host_tlsa(mx, &q, h);
		d = route_mx_decide(mx_secure, addr_secure, tlsa, plan_r->sts_mode, h->sts_match);
		h->tls = d.tls;
		h->skip = d.skip;
		route_mx_note(h->reason, sizeof(h->reason), "%s", d.why);
		if (!h->skip)
			usable++;
	}
	if (usable == 0) {
		size_t used = 0;

		used = (size_t)snprintf(err, errlen, "no usable MX host for %s:", plan_r->domain);
		for (size_t i = 0; i < plan_r->nhosts && used < errlen; i++)
			used += (size_t)snprintf(err + used, errlen - used, "%s %s: %s",
			    i > 0 ? ";" : "", plan_r->hosts[i].name, plan_r->hosts[i].reason);
		goto out;
	}
	ret = 0;
out:
	dns_answer_free(&a);
	if (q.timed_out) {
		/* dns_resolve fails fast after DNS_TIMEOUTS_MAX timeouts: a fresh
		 * context next time, so one bad minute does not last forever */
		dns_resolver_free(q.r);
		q.r = NULL;
	}
	route_mx_resolver_put(mx, q.r);
	return ret;
}

/* ---- sessions ------------------------------------------------------------------- */

void
route_mx_client_conf(const struct route_mx *mx, const struct route_mx_plan *plan,
    const struct route_mx_host *h, struct client_conf *cc_r)
{
	(void)plan;
	memset(cc_r, 0, sizeof(*cc_r));
	cc_r->host = h->name;
	cc_r->port = mx->conf.port;
	cc_r->tls = CLIENT_TLS_STARTTLS;
	cc_r->sni = h->name;
	cc_r->verify_host = h->name;
	cc_r->ssl_ctx = mx->ctx;
	cc_r->helo = mx->conf.helo;
	cc_r->timeout_ms = mx->conf.timeout_ms;
	switch (h->tls) {
	case ROUTE_MX_TLS_DANE:
		cc_r->verify = CLIENT_VERIFY_PEER_HOST;
		cc_r->dane = h->tlsa;
		cc_r->ndane = h->ntlsa;
		cc_r->dane_base = h->tlsa_base;
		break;
	case ROUTE_MX_TLS_STS:
		cc_r->verify = CLIENT_VERIFY_PEER_HOST;
		break;
	case ROUTE_MX_TLS_ENCRYPT:
	case ROUTE_MX_TLS_OPPORTUNISTIC:
		cc_r->verify = CLIENT_VERIFY_NONE;
		break;
	}
}

static void
route_mx_fail(struct route_mx_attempt *at, struct client *c, const char *step, bool *all_5xx)
{
	const struct client_error *e = client_error(c);
	const struct client_reply *r = client_reply(c);
	bool perm = e->kind == CLIENT_E_REPLY && r->code >= 500 && r->code < 600;

	if (!perm)
		*all_5xx = false;
	if (e->kind == CLIENT_E_REPLY)
		route_mx_fmt(at->reason, sizeof(at->reason), "%s[%s]: %s: %s", at->host, at->addr,
		    step, r->line);
	else
		route_mx_fmt(at->reason, sizeof(at->reason), "%s[%s]: %s: %s", at->host, at->addr,
		    step, e->detail);
}

struct client *
route_mx_open(struct route_mx *mx, const struct route_mx_plan *plan, struct route_mx_cursor *cur,
    struct route_mx_attempt *at_r)
{
	bool all_5xx = true, tried = false;

	memset(at_r, 0, sizeof(*at_r));
	for (; cur->host < plan->nhosts; cur->host++, cur->addr = 0, cur->plain_retry = false) {
		const struct route_mx_host *h = &plan->hosts[cur->host];
		bool required = h->tls != ROUTE_MX_TLS_OPPORTUNISTIC;

		snprintf(at_r->host, sizeof(at_r->host), "%s", h->name);
		at_r->tls = h->tls;
		if (h->skip) {
			if (!tried)
				snprintf(at_r->reason, sizeof(at_r->reason), "%s: not used: %s",
				    h->name, h->reason);
			all_5xx = false;
			continue;
		}
		while (cur->addr < h->naddrs) {
			const struct route_mx_addr *ad = &h->addrs[cur->addr];
			struct client_conf cc;
			struct client *c;
			bool plain = cur->plain_retry;

			tried = true;
			snprintf(at_r->addr, sizeof(at_r->addr), "%s", ad->text);
			route_mx_client_conf(mx, plan, h, &cc);
			c = client_new(&cc);
			cur->plain_retry = false;
			cur->addr++; /* moved back below for the plaintext retry */
			if (client_connect_addr(c, (const struct sockaddr *)&ad->ss, ad->sslen) ==
			    -1) {
				route_mx_fail(at_r, c, "connect", &all_5xx);
				goto next;
			}
			if (client_greeting(c) == -1) {
				route_mx_fail(at_r, c, "greeting", &all_5xx);
				goto next;
			}
			if (client_ehlo(c) == -1) {
				route_mx_fail(at_r, c, "EHLO", &all_5xx);
				goto next;
			}
			if (!client_caps(c)->starttls) {
				if (required) {
					all_5xx = false;
					snprintf(at_r->reason, sizeof(at_r->reason),
					    "%s[%s]: STARTTLS not offered but required (%s)",
					    h->name, ad->text, route_mx_tls_name(h->tls));
					goto next;
				}
			} else if (!plain) {
				if (client_starttls(c) == -1) {
					route_mx_fail(at_r, c,
					    h->tls == ROUTE_MX_TLS_DANE      ? "STARTTLS (DANE)"
					        : h->tls == ROUTE_MX_TLS_STS ? "STARTTLS (MTA-STS)"
					                                     : "STARTTLS",
					    &all_5xx);
					if (!required) {
						/* opportunistic: once more, in plaintext */
						cur->addr--;
						cur->plain_retry = true;
					}
					goto next;
				}
				if (client_ehlo(c) == -1) {
					route_mx_fail(at_r, c, "EHLO after STARTTLS", &all_5xx);
					goto next;
				}
			}
			{
				const struct client_tls_info *ti = client_tls_info(c);

				at_r->tls_active = client_is_tls(c);
				at_r->verified = at_r->tls_active &&
				    (h->tls == ROUTE_MX_TLS_DANE         ? ti->dane_matched
				            : h->tls == ROUTE_MX_TLS_STS ? ti->verified
				                                         : false);
				if (ti->dane_matched)
					snprintf(at_r->dane_match, sizeof(at_r->dane_match),
					    "%u %u %u at depth %d", ti->dane_usage,
					    ti->dane_selector, ti->dane_mtype, ti->dane_depth);
				at_r->reason[0] = '\0';
				if (plain)
					snprintf(at_r->reason, sizeof(at_r->reason),
					    "plaintext after a failed STARTTLS handshake");
			}
			at_r->transient = true;
			return c;
		next:
			client_disconnect(c);
			client_free(c);
		}
	}
	at_r->transient = !(tried && all_5xx);
	if (at_r->reason[0] == '\0')
		snprintf(at_r->reason, sizeof(at_r->reason), "no MX host left to try for %s",
		    plan->domain);
	return NULL;
}

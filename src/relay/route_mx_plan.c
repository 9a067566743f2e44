/*
 * route_mx_plan: the delivery plan for a domain (route_mx_resolve, rules in
 * route_mx.h): the MX look-up and its order (RFC 5321 5.1, RFC 7505), the
 * addresses of each host and their DNSSEC status, TLSA where DANE applies
 * (RFC 7672 2.2), the MTA-STS policy (route_mx_sts.c), and from all that
 * each host's TLS requirement (route_mx_decide, pure).
 */
#include "relay/route_mx.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_name.h"
#include "lib/xalloc.h"
#include "relay/route_mx_priv.h"

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

/* ---- the hosts ------------------------------------------------------------------ */

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

/* The MX hosts of plan->domain, in delivery order, named (RFC 5321 5.1:
 * no MX: the domain itself), or -1 with err (plan->permanent when that is
 * final: NXDOMAIN, null MX). */
static int
route_mx_plan_hosts(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan,
    char *err, size_t errlen)
{
	struct dns_answer a;
	struct dns_rr *v[DNS_RR_MAX];
	size_t n = 0, nnull = 0;
	int ret = -1;

	route_mx_query(q, plan->domain, DNS_TYPE_MX, &a);
	plan->mx_security = a.security;
	switch (a.status) {
	case DNS_OK:
		break;
	case DNS_NODATA:
		break;
	case DNS_NXDOMAIN:
		/* RFC 5321 5.1: a name that does not exist is a permanent error */
		snprintf(err, errlen, "domain %s does not exist (NXDOMAIN)", plan->domain);
		plan->permanent = true;
		goto out;
	case DNS_BOGUS:
		snprintf(err, errlen, "MX of %s fails DNSSEC validation: %s", plan->domain,
		    a.why_bogus != NULL ? a.why_bogus : "bogus");
		goto out;
	default:
		snprintf(
		    err, errlen, "MX look-up for %s: %s", plan->domain, dns_status_name(a.status));
		goto out;
	}
	if (a.canonname != NULL)
		route_mx_note(plan->notes, sizeof(plan->notes), "%s is an alias of %s",
		    plan->domain, a.canonname);
	for (size_t i = 0; a.status == DNS_OK && i < a.n; i++) {
		if (strcmp(a.rr[i].text, ".") == 0)
			nnull++;
		else
			v[n++] = &a.rr[i];
	}
	if (nnull > 0 && n == 0) {
		/* RFC 7505 3: "0 ." is an explicit "no mail here" */
		snprintf(err, errlen, "domain %s does not accept mail (null MX, RFC 7505)",
		    plan->domain);
		plan->permanent = true;
		goto out;
	}
	if (nnull > 0)
		route_mx_note(plan->notes, sizeof(plan->notes),
		    "null MX beside other MX records (RFC 7505 3 forbids it): ignored");
	if (n == 0) {
		/* RFC 5321 5.1: no MX: the domain is its own implicit MX */
		struct route_mx_host *h = &plan->hosts[0];

		plan->implicit_mx = true;
		plan->nhosts = 1;
		snprintf(h->name, sizeof(h->name), "%s", plan->domain);
		h->implicit = true;
	} else {
		route_mx_sort(mx, v, n);
		if (n > ROUTE_MX_HOSTS_MAX) {
			plan->mx_truncated = true;
			route_mx_note(plan->notes, sizeof(plan->notes),
			    "%zu MX records; only the first %d are used", n, ROUTE_MX_HOSTS_MAX);
			n = ROUTE_MX_HOSTS_MAX;
		}
		for (size_t i = 0; i < n; i++) {
			struct route_mx_host *h = &plan->hosts[plan->nhosts++];

			route_mx_name_copy(h->name, sizeof(h->name), v[i]->text);
			h->pref = v[i]->pref;
		}
	}
	ret = 0;
out:
	dns_answer_free(&a);
	return ret;
}

/* The addresses of every host, or -1 with err when the domain has neither
 * MX nor address: not a mail domain (RFC 5321 5.1). */
static int
route_mx_plan_addrs(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan,
    char *err, size_t errlen)
{
	const struct route_mx_host *h0 = &plan->hosts[0];

	for (size_t i = 0; i < plan->nhosts; i++) {
		struct route_mx_host *h = &plan->hosts[i];

		snprintf(h->tlsa_base, sizeof(h->tlsa_base), "%s", h->name);
		route_mx_host_addrs(mx, q, h);
		if (h->cname)
			route_mx_note(plan->notes, sizeof(plan->notes),
			    "MX %s is a CNAME (RFC 5321 5.1: it should not be); followed", h->name);
	}
	if (plan->implicit_mx && h0->naddrs == 0 && h0->addr_security != DNS_SEC_BOGUS) {
		bool temp =
		    strstr(h0->reason, "servfail") != NULL || strstr(h0->reason, "timeout") != NULL;

		snprintf(err, errlen, "domain %s has no MX and no address (%s)", plan->domain,
		    h0->reason);
		plan->permanent = !temp;
		return -1;
	}
	return 0;
}

/* Each host's TLS requirement (route_mx_decide, after TLSA where DANE
 * applies); the number of hosts left to deliver to. */
static size_t
route_mx_plan_tls(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan)
{
	bool mx_secure = plan->mx_security == DNS_SECURE;
	size_t usable = 0;

	for (size_t i = 0; i < plan->nhosts; i++) {
		struct route_mx_host *h = &plan->hosts[i];
		enum route_mx_tlsa_state tlsa = ROUTE_MX_TLSA_NONE;
		bool addr_secure = h->addr_security == DNS_SECURE;
		struct route_mx_decision d;

		if (h->skip)
			continue;
		if (!mx->conf.no_dane && mx_secure && addr_secure)
			tlsa = route_mx_host_tlsa(mx, q, h);
		d = route_mx_decide(mx_secure, addr_secure, tlsa, plan->sts_mode, h->sts_match);
		h->tls = d.tls;
		h->skip = d.skip;
		route_mx_note(h->reason, sizeof(h->reason), "%s", d.why);
		if (!h->skip)
			usable++;
	}
	return usable;
}

int
route_mx_resolve(
    struct route_mx *mx, const char *domain, struct route_mx_plan *plan_r, char *err, size_t errlen)
{
	struct route_mx_call q = {mx, NULL, false};
	int ret = -1;

	memset(plan_r, 0, sizeof(*plan_r));
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
	if (route_mx_plan_hosts(mx, &q, plan_r, err, errlen) == -1 ||
	    route_mx_plan_addrs(mx, &q, plan_r, err, errlen) == -1)
		goto out;
	if (!mx->conf.no_mta_sts)
		route_mx_sts_apply(mx, &q, plan_r);
	if (route_mx_plan_tls(mx, &q, plan_r) == 0) {
		size_t used =
		    (size_t)snprintf(err, errlen, "no usable MX host for %s:", plan_r->domain);

		for (size_t i = 0; i < plan_r->nhosts && used < errlen; i++)
			used += (size_t)snprintf(err + used, errlen - used, "%s %s: %s",
			    i > 0 ? ";" : "", plan_r->hosts[i].name, plan_r->hosts[i].reason);
		goto out;
	}
	ret = 0;
out:
	if (q.timed_out) {
		/* dns_resolve fails fast after DNS_TIMEOUTS_MAX timeouts: a fresh
		 * context next time, so one bad minute does not last forever */
		dns_resolver_free(q.r);
		q.r = NULL;
	}
	route_mx_resolver_put(mx, q.r);
	return ret;
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

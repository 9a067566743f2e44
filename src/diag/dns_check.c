/*
 * dns_check: runs the DNS checks of one domain (see dns_check.h).
 *
 * Every DNS question goes through dc_query, which notes resolver trouble,
 * so the checks only look at answers: the questions that got no answer
 * (timeout) or SERVFAIL are gathered into one dns-timeout and one
 * dns-servfail finding naming them all, a DNSSEC failure is a dnssec-bogus
 * per question, and a section whose question went unanswered is "unknown"
 * in the report, never "missing". A domain that does not exist (NXDOMAIN
 * for its MX question) is said once (domain-not-found); nothing else is
 * checked, as every record would only be "missing". Record text from DNS is
 * parsed raw and shown through dns_printable (JSON needs valid UTF-8).
 * The report object owns all its strings; nothing outlives dns_check_run
 * except it and the findings.
 */
#include "diag/dns_check.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dkim_parse.h"
#include "dns/dmarc_parse.h"
#include "dns/mtasts_fetch.h"
#include "dns/mtasts_parse.h"
#include "diag/spf_check.h"
#include "dns/spf_parse.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#define DC_QUESTIONS_TEXT_MAX 2048 /* evidence listing unanswered questions */

/* The questions that failed one way, for one finding naming them all. */
struct dc_failed {
	struct buf text; /* "name TYPE, name TYPE (detail), ..." */
	size_t n, listed;
};

struct dc {
	struct dns_resolver *r;
	const struct dns_check_opts *o;
	struct findings *f;
	json_t *report;
	enum dns_security domain_security;
	bool domain_security_known;
	enum dmarc_policy dmarc_effective; /* UNSET when no valid record */
	int dmarc_pct;
	struct dc_failed timeouts, servfails;
	bool nxdomain; /* the domain itself does not exist */
};

static bool
dc_is_failure(enum dns_status s)
{
	return s == DNS_TIMEOUT || s == DNS_SERVFAIL || s == DNS_BOGUS;
}

static void dc_failed_add(struct dc_failed *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Notes one failed question, once (the SPF walk may ask again). */
static void
dc_failed_add(struct dc_failed *d, const char *fmt, ...)
{
	char q[600];
	va_list ap;
	size_t ql;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	ql = strlen(q);
	for (const char *p = d->text.data; p != NULL && (p = strstr(p, q)) != NULL; p += ql) {
		if ((p == d->text.data || p[-1] == ' ') && (p[ql] == '\0' || p[ql] == ','))
			return;
	}
	d->n++;
	if (buf_printf(&d->text, "%s%s", d->listed > 0 ? ", " : "", q) == 0)
		d->listed++;
}

/* Asks name/type; resolver trouble becomes a finding unless quiet. */
static enum dns_status
dc_query(struct dc *c, const char *name, int type, struct dns_answer *a, bool quiet)
{
	dns_query(c->r, name, type, a);
	if (quiet)
		return a->status;
	switch (a->status) {
	case DNS_TIMEOUT:
		dc_failed_add(&c->timeouts, "%s %s", name, dns_type_name(type));
		break;
	case DNS_SERVFAIL:
		dc_failed_add(&c->servfails, "%s %s (rcode %d%s%s)", name, dns_type_name(type),
		    a->rcode, a->why_bogus ? ": " : "", a->why_bogus ? a->why_bogus : "");
		break;
	case DNS_BOGUS:
		/* the root's own keys could not be validated: the resolver
		 * path drops DNSSEC records; that says nothing of the domain */
		if (a->why_bogus != NULL &&
		    (strstr(a->why_bogus, "for trust anchor . ") != NULL ||
		        strstr(a->why_bogus, "key for validation . is") != NULL)) {
			if (!findings_has(c->f, "dnssec-anchor-failed"))
				findings_add(c->f, "dnssec-anchor-failed", "%s %s: %s", name,
				    dns_type_name(type), a->why_bogus);
			break;
		}
		findings_add(c->f, "dnssec-bogus", "%s %s: %s", name, dns_type_name(type),
		    a->why_bogus ? a->why_bogus : "validation failed");
		break;
	default:
		break;
	}
	return a->status;
}

static json_t *
dc_str(const char *p, size_t len)
{
	char *s = dns_printable(p, len);
	json_t *j = json_string(s);

	free(s);
	return j;
}

/* The printable text of a record (malloc'd). */
static char *
dc_rr_text(const struct dns_rr *rr)
{
	return dns_printable(rr->text, rr->len);
}

/* ---- MX ---------------------------------------------------------------- */

static bool
dc_is_ip_literal(const char *host)
{
	char tmp[256];
	unsigned char a[16];
	size_t n = strlen(host);

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, host, n + 1);
	if (tmp[n - 1] == '.')
		tmp[n - 1] = '\0';
	return inet_pton(AF_INET, tmp, a) == 1 || inet_pton(AF_INET6, tmp, a) == 1;
}

/* The reverse name of an address ("4.3.2.1.in-addr.arpa"). */
static bool
dc_reverse_name(const char *addr, char *out, size_t outsz)
{
	unsigned char a[16];
	size_t o = 0;

	if (inet_pton(AF_INET, addr, a) == 1) {
		return (size_t)snprintf(
		           out, outsz, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]) < outsz;
	}
	if (inet_pton(AF_INET6, addr, a) != 1 || outsz < 74)
		return false;
	for (int i = 15; i >= 0; i--) {
		static const char hex[] = "0123456789abcdef";

		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", 9);
	return true;
}

static json_t *
dc_addresses(struct dc *c, const char *host, int type, bool *any, bool *failed, char **cname)
{
	struct dns_answer a;
	json_t *arr = json_array();

	dc_query(c, host, type, &a, false);
	if (a.status == DNS_TIMEOUT || a.status == DNS_SERVFAIL || a.status == DNS_BOGUS)
		*failed = true;
	if (a.canonname != NULL && *cname == NULL)
		*cname = xstrdup(a.canonname);
	for (size_t i = 0; i < a.n && i < DNS_CHECK_ADDRS_MAX; i++) {
		char rev[128];
		struct dns_answer p;
		json_t *ptrs = json_array();

		*any = true;
		if (dc_reverse_name(a.rr[i].text, rev, sizeof(rev))) {
			dc_query(c, rev, DNS_TYPE_PTR, &p, true);
			for (size_t k = 0; k < p.n; k++)
				json_array_append_new(ptrs, dc_str(p.rr[k].text, p.rr[k].len));
			if (p.n == 0)
				findings_add(c->f, "mx-no-ptr", "%s (%s): no PTR record at %s (%s)",
				    a.rr[i].text, host, rev, dns_status_name(p.status));
			dns_answer_free(&p);
		}
		json_array_append_new(
		    arr, json_pack("{s:s, s:o}", "address", a.rr[i].text, "ptr", ptrs));
	}
	dns_answer_free(&a);
	return arr;
}

static void
dc_tlsa(struct dc *c, const char *host, json_t *tlsa)
{
	char name[300];
	struct dns_answer a;
	json_t *recs;
	size_t hl = strlen(host);

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if ((size_t)snprintf(name, sizeof(name), "_25._tcp.%.*s", (int)hl, host) >= sizeof(name))
		return;
	dc_query(c, name, DNS_TYPE_TLSA, &a, false);
	if (a.status != DNS_OK) {
		dns_answer_free(&a);
		return;
	}
	recs = json_array();
	for (size_t i = 0; i < a.n; i++) {
		const struct dns_rr *rr = &a.rr[i];
		size_t want = rr->mtype == 1 ? 32 : rr->mtype == 2 ? 64 : 0;

		json_array_append_new(recs,
		    json_pack("{s:i, s:i, s:i, s:s}", "usage", rr->usage, "selector", rr->selector,
		        "mtype", rr->mtype, "data", rr->text));
		/* RFC 6698 2.1, RFC 7672 3.1 */
		if (rr->usage > 3 || rr->selector > 1 || rr->mtype > 2 ||
		    (want != 0 && rr->data_len != want) || rr->data_len == 0)
			findings_add(c->f, "tlsa-invalid",
			    "%s: \"%u %u %u\" with %zu bytes of data is not a valid TLSA record",
			    name, rr->usage, rr->selector, rr->mtype, rr->data_len);
		else if (rr->usage < 2)
			findings_add_severity(c->f, "tlsa-invalid", FINDING_WARNING,
			    "%s: usage %u (PKIX-%s): SMTP senders use only DANE-TA (2) and DANE-EE (3) "
			    "(RFC 7672 3.1.3), so this record matches nothing",
			    name, rr->usage, rr->usage == 0 ? "TA" : "EE");
	}
	if (a.security != DNS_SECURE)
		findings_add(c->f, "tlsa-without-dnssec",
		    "%s: %zu TLSA record(s), DNSSEC status %s%s", name, a.n,
		    dns_security_name(a.security),
		    dns_resolver_anchor(c->r) == NULL ? " (no trust anchor: cannot validate)" : "");
	json_array_append_new(tlsa,
	    json_pack("{s:s, s:s, s:s, s:o}", "mx", host, "name", name, "dnssec",
	        dns_security_name(a.security), "records", recs));
	dns_answer_free(&a);
}

static void
dc_mx(struct dc *c)
{
	struct dns_answer a;
	json_t *mx = json_array(), *tlsa = json_array();
	const char *d = c->o->domain;
	size_t order[DNS_RR_MAX];
	bool null_mx = false;

	dc_query(c, d, DNS_TYPE_MX, &a, false);
	if (a.status != DNS_TIMEOUT && a.status != DNS_SERVFAIL) {
		c->domain_security = a.security;
		c->domain_security_known = true;
	}
	if (dc_is_failure(a.status)) {
		/* no answer: whether the domain has MX records is unknown */
		json_decref(mx);
		json_decref(tlsa);
		json_object_set_new(c->report, "mx", json_null());
		json_object_set_new(c->report, "tlsa", json_array());
		dns_answer_free(&a);
		return;
	}
	if (a.status == DNS_NXDOMAIN) {
		c->nxdomain = true;
		findings_add(c->f, "domain-not-found",
		    "%s MX: NXDOMAIN (rcode 3): the name %s does not exist%s", d, d,
		    a.security == DNS_SECURE ? " (proven by DNSSEC)" : "");
	} else if (a.status == DNS_NODATA) {
		struct dns_answer a4, a6;

		dc_query(c, d, DNS_TYPE_A, &a4, false);
		dc_query(c, d, DNS_TYPE_AAAA, &a6, false);
		if (a4.n + a6.n > 0)
			findings_add_severity(c->f, "mx-missing", FINDING_WARNING,
			    "%s has no MX record; senders fall back to its address %s (implicit MX, "
			    "RFC 5321 5.1)",
			    d, a4.n > 0 ? a4.rr[0].text : a6.rr[0].text);
		else
			findings_add(
			    c->f, "mx-missing", "%s has no MX record and no A/AAAA record", d);
		dns_answer_free(&a4);
		dns_answer_free(&a6);
	}
	/* sorted by preference (insertion sort: a handful of records) */
	for (size_t i = 0; i < a.n; i++) {
		size_t k = i;

		while (k > 0 && a.rr[order[k - 1]].pref > a.rr[i].pref) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	for (size_t i = 0; i < a.n; i++) {
		if (strcmp(a.rr[i].text, ".") == 0)
			null_mx = true;
	}
	if (null_mx) {
		/* RFC 7505 3: "0 ." alone says the domain accepts no mail */
		if (a.n > 1)
			findings_add_severity(c->f, "mx-null", FINDING_ERROR,
			    "%s publishes a null MX (\".\") together with %zu other MX record(s) "
			    "(RFC 7505 3 forbids this)",
			    d, a.n - 1);
		else
			findings_add(c->f, "mx-null", "%s: MX %u . (the domain accepts no mail)", d,
			    a.rr[0].pref);
	}
	for (size_t j = 0; j < a.n && j < DNS_CHECK_MX_MAX; j++) {
		const struct dns_rr *rr = &a.rr[order[j]];
		json_t *o = json_pack("{s:i, s:s}", "preference", rr->pref, "host", rr->text);
		bool any = false, failed = false;
		char *cname = NULL;

		json_array_append_new(mx, o);
		if (strcmp(rr->text, ".") == 0)
			continue;
		if (dc_is_ip_literal(rr->text)) {
			findings_add(c->f, "mx-ip-literal", "MX %u %s", rr->pref, rr->text);
			continue;
		}
		json_object_set_new(
		    o, "a", dc_addresses(c, rr->text, DNS_TYPE_A, &any, &failed, &cname));
		json_object_set_new(
		    o, "aaaa", dc_addresses(c, rr->text, DNS_TYPE_AAAA, &any, &failed, &cname));
		if (cname != NULL) {
			findings_add(c->f, "mx-cname", "MX %u %s is an alias (CNAME) of %s",
			    rr->pref, rr->text, cname);
			json_object_set_new(o, "cname", json_string(cname));
			free(cname);
		}
		if (!any && !failed)
			findings_add(c->f, "mx-no-address", "MX %u %s has no A or AAAA record",
			    rr->pref, rr->text);
		if (any)
			dc_tlsa(c, rr->text, tlsa);
	}
	json_object_set_new(c->report, "mx", mx);
	json_object_set_new(c->report, "tlsa", tlsa);
	dns_answer_free(&a);
}

/* ---- TXT helpers --------------------------------------------------------- */

/* The TXT records at name that is_rec accepts: their indexes in a. */
static size_t
dc_txt(struct dc *c, const char *name, bool (*is_rec)(const char *, size_t), struct dns_answer *a,
    size_t idx[DNS_RR_MAX])
{
	size_t n = 0;

	dc_query(c, name, DNS_TYPE_TXT, a, false);
	for (size_t i = 0; i < a->n; i++) {
		if (is_rec == NULL || is_rec(a->rr[i].text, a->rr[i].len))
			idx[n++] = i;
	}
	return n;
}

static json_t *
dc_str_array(char *const *v, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, dc_str(v[i], strlen(v[i])));
	return arr;
}

/* ---- SPF ----------------------------------------------------------------- */

static enum spf_dns_status
dc_spf_lookup_cb(void *arg, const char *name, enum spf_qtype type, char ***ans_r, size_t *n_r)
{
	struct dc *c = arg;
	struct dns_answer a;
	int t = type == SPF_Q_TXT ? DNS_TYPE_TXT
	    : type == SPF_Q_A     ? DNS_TYPE_A
	    : type == SPF_Q_AAAA  ? DNS_TYPE_AAAA
	                          : DNS_TYPE_MX;
	enum spf_dns_status s;

	dc_query(c, name, t, &a, false);
	switch (a.status) {
	case DNS_OK:
		s = SPF_DNS_OK;
		break;
	case DNS_NODATA:
		s = SPF_DNS_NODATA;
		break;
	case DNS_NXDOMAIN:
		s = SPF_DNS_NXDOMAIN;
		break;
	default:
		s = SPF_DNS_FAIL;
		break;
	}
	*n_r = a.n;
	*ans_r = a.n > 0 ? xcalloc(a.n, sizeof(char *)) : NULL;
	for (size_t i = 0; i < a.n; i++) {
		(*ans_r)[i] = a.rr[i].text; /* ownership moves */
		a.rr[i].text = NULL;
	}
	a.n = 0;
	dns_answer_free(&a);
	return s;
}

static void
dc_spf(struct dc *c)
{
	struct spf_check_result res;
	json_t *o;
	char all[2] = {0, 0};

	spf_check(c->o->domain, dc_spf_lookup_cb, c, c->f, &res);
	all[0] = res.all;
	o = json_pack("{s:s?, s:I, s:I, s:s?, s:O}", "record", res.record, "lookups",
	    (json_int_t)res.lookups, "void_lookups", (json_int_t)res.void_lookups, "all",
	    res.all ? all : NULL, "includes", res.includes);
	json_object_set_new(o, "unknown", json_boolean(res.unknown));
	json_object_set_new(c->report, "spf", o);
	if (res.found && !findings_has(c->f, "spf-syntax") && !findings_has(c->f, "spf-multiple")) {
		switch (res.all) {
		case '+':
			findings_add_severity(c->f, "spf-permissive-all", FINDING_ERROR,
			    "\"+all\": every server in the world passes SPF for %s", c->o->domain);
			break;
		case '?':
			findings_add_severity(c->f, "spf-permissive-all", FINDING_WARNING,
			    "\"?all\": servers not listed get \"neutral\", the same as no SPF");
			break;
		case 0:
			findings_add_severity(c->f, "spf-permissive-all", FINDING_WARNING,
			    "no \"all\" and no redirect: servers not listed get \"neutral\" (RFC "
			    "7208 4.7)");
			break;
		case '~': {
			bool enforced =
			    c->dmarc_effective >= DMARC_POLICY_QUARANTINE && c->dmarc_pct == 100;

			findings_add_severity(c->f, "spf-softfail-all",
			    enforced ? FINDING_INFO : FINDING_WARNING, "\"~all\"%s",
			    enforced ? " (DMARC enforces a policy, so softfail is enough)"
			             : " and no enforcing DMARC policy");
			break;
		}
		default:
			break;
		}
	}
	spf_check_result_free(&res);
}

/* ---- DMARC --------------------------------------------------------------- */

static void
dc_dmarc_rua_check(struct dc *c, const char *org, char *const *uris, size_t n, const char *tag)
{
	for (size_t i = 0; i < n; i++) {
		const char *at, *dom;
		char name[600], *q;
		struct dns_answer a;
		size_t idx[DNS_RR_MAX], dl, ol = strlen(org);

		if (strncasecmp(uris[i], "mailto:", 7) != 0 || (at = strrchr(uris[i], '@')) == NULL)
			continue;
		dom = at + 1;
		q = strchr(dom, '?');
		dl = q != NULL ? (size_t)(q - dom) : strlen(dom);
		/* RFC 7489 7.1: a report address in another organizational
		 * domain must agree to receive reports */
		if ((dl == ol && strncasecmp(dom, org, dl) == 0) ||
		    (dl > ol && dom[dl - ol - 1] == '.' &&
		        strncasecmp(dom + dl - ol, org, ol) == 0))
			continue;
		if ((size_t)snprintf(name, sizeof(name), "%s._report._dmarc.%.*s", c->o->domain,
		        (int)dl, dom) >= sizeof(name))
			continue;
		if (dc_txt(c, name, dmarc_is_record, &a, idx) == 0 && !dc_is_failure(a.status))
			findings_add(c->f, "dmarc-rua-unauthorized",
			    "%s=%s: no \"v=DMARC1\" TXT record at %s", tag, uris[i], name);
		dns_answer_free(&a);
	}
}

/* A TXT record at name plainly meant as DMARC that receivers do not take
 * for one: dmarc-invalid saying what is wrong (not dmarc-missing, which
 * would send the administrator to publish a second record). */
static bool
dc_dmarc_near(struct dc *c, const char *name, const struct dns_answer *a, json_t *o)
{
	const char *why;

	for (size_t i = 0; i < a->n; i++) {
		char *text;

		if (!dmarc_is_near_record(a->rr[i].text, a->rr[i].len, &why))
			continue;
		text = dc_rr_text(&a->rr[i]);
		findings_add(c->f, "dmarc-invalid",
		    "%s: \"%s\": %s; receivers ignore it, as if there were no DMARC record", name,
		    text, why);
		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "record", json_string(text));
		free(text);
		return true;
	}
	return false;
}

static void
dc_dmarc(struct dc *c)
{
	const char *d = c->o->domain, *parent = strchr(d, '.');
	char name[300];
	struct dns_answer a;
	size_t idx[DNS_RR_MAX], n;
	struct dmarc_record rec;
	struct dkim_parse_error err;
	bool fallback = false;
	json_t *o = json_object();
	char *text;
	enum dmarc_policy eff;

	c->dmarc_effective = DMARC_POLICY_UNSET;
	c->dmarc_pct = 100;
	json_object_set_new(c->report, "dmarc", o);
	snprintf(name, sizeof(name), "_dmarc.%s", d);
	n = dc_txt(c, name, dmarc_is_record, &a, idx);
	if (n == 0 && dc_dmarc_near(c, name, &a, o))
		goto near;
	/* RFC 7489 6.6.3: no record at the domain: the organizational domain's.
	 * Without a public suffix list that is taken as the parent, when the
	 * parent still has two labels. */
	if (n == 0 && a.status != DNS_TIMEOUT && a.status != DNS_SERVFAIL && parent != NULL &&
	    strchr(parent + 1, '.') != NULL) {
		dns_answer_free(&a);
		snprintf(name, sizeof(name), "_dmarc.%s", parent + 1);
		n = dc_txt(c, name, dmarc_is_record, &a, idx);
		fallback = true;
		if (n == 0 && dc_dmarc_near(c, name, &a, o))
			goto near;
	}
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "organizational_fallback", json_boolean(fallback));
	json_object_set_new(o, "unknown", json_boolean(n == 0 && dc_is_failure(a.status)));
	if (n == 0) {
		if (a.status != DNS_TIMEOUT && a.status != DNS_SERVFAIL && a.status != DNS_BOGUS)
			findings_add(c->f, "dmarc-missing",
			    "no TXT record starting with \"v=DMARC1\" at "
			    "_dmarc.%s%s",
			    d, fallback ? " nor at its parent" : "");
		json_object_set_new(o, "record", json_null());
		dns_answer_free(&a);
		return;
	}
	if (n > 1) {
		findings_add(c->f, "dmarc-invalid",
		    "%s has %zu DMARC records; receivers then apply none (RFC 7489 6.6.3)", name,
		    n);
		dns_answer_free(&a);
		return;
	}
	text = dc_rr_text(&a.rr[idx[0]]);
	json_object_set_new(o, "record", json_string(text));
	if (dmarc_parse(a.rr[idx[0]].text, a.rr[idx[0]].len, &rec, &err) == -1) {
		char *tag = dns_printable(a.rr[idx[0]].text + err.off, err.len);

		findings_add(c->f, "dmarc-invalid", "%s: \"%s\": %s", name, tag, err.errstr);
		free(tag);
		goto out;
	}
	/* a subdomain found through its parent gets sp= (RFC 7489 6.3) */
	eff = fallback && rec.sp != DMARC_POLICY_UNSET ? rec.sp : rec.p;
	c->dmarc_effective = eff;
	c->dmarc_pct = rec.pct;
	json_object_set_new(o, "p", json_string(dmarc_policy_name(rec.p)));
	if (rec.sp != DMARC_POLICY_UNSET)
		json_object_set_new(o, "sp", json_string(dmarc_policy_name(rec.sp)));
	json_object_set_new(o, "policy", json_string(dmarc_policy_name(eff)));
	json_object_set_new(o, "pct", json_integer(rec.pct));
	json_object_set_new(o, "adkim", json_stringn(&rec.adkim, 1));
	json_object_set_new(o, "aspf", json_stringn(&rec.aspf, 1));
	json_object_set_new(o, "rua", dc_str_array(rec.rua, rec.n_rua));
	json_object_set_new(o, "ruf", dc_str_array(rec.ruf, rec.n_ruf));
	if (rec.fo[0] != '\0')
		json_object_set_new(o, "fo", json_string(rec.fo));
	if (eff == DMARC_POLICY_NONE)
		findings_add(c->f, "dmarc-policy-none", "%s: %s", name, text);
	else if (rec.pct < 100)
		findings_add(c->f, "dmarc-pct",
		    "%s: pct=%d: the policy applies to %d%% of failing mail", name, rec.pct,
		    rec.pct);
	if (rec.unknown != NULL)
		findings_add(c->f, "dmarc-unknown-tag", "%s: unknown tag(s) %s", name, rec.unknown);
	if (rec.n_rua == 0)
		findings_add(c->f, "dmarc-no-rua", "%s: %s", name, text);
	dc_dmarc_rua_check(c, strchr(name, '.') + 1, rec.rua, rec.n_rua, "rua");
	dc_dmarc_rua_check(c, strchr(name, '.') + 1, rec.ruf, rec.n_ruf, "ruf");
out:
	free(text);
	dmarc_record_free(&rec);
	dns_answer_free(&a);
	return;
near:
	json_object_set_new(o, "organizational_fallback", json_boolean(fallback));
	json_object_set_new(o, "unknown", json_false());
	dns_answer_free(&a);
}

/* ---- DKIM ---------------------------------------------------------------- */

static void
dc_dkim(struct dc *c)
{
	char name[600];
	struct dns_answer a;
	size_t idx[DNS_RR_MAX], n;
	struct dkim_key_record k;
	struct dkim_parse_error err;
	const char *errstr;
	json_t *o;
	char *text;
	int bits;

	if (c->o->selector == NULL) {
		json_object_set_new(c->report, "dkim", json_null());
		return;
	}
	if ((size_t)snprintf(name, sizeof(name), "%s._domainkey.%s", c->o->selector,
	        c->o->domain) >= sizeof(name)) {
		json_object_set_new(c->report, "dkim", json_null());
		return;
	}
	o = json_pack("{s:s, s:s}", "selector", c->o->selector, "name", name);
	json_object_set_new(c->report, "dkim", o);
	n = dc_txt(c, name, NULL, &a, idx);
	json_object_set_new(o, "unknown", json_boolean(dc_is_failure(a.status)));
	if (n == 0) {
		if (a.status == DNS_NXDOMAIN || a.status == DNS_NODATA)
			findings_add(c->f, "dkim-missing", "no TXT record at %s (%s)", name,
			    dns_status_name(a.status));
		json_object_set_new(o, "record", json_null());
		dns_answer_free(&a);
		return;
	}
	if (n > 1) {
		findings_add(c->f, "dkim-invalid",
		    "%s has %zu TXT records; a verifier may pick any of them", name, n);
		dns_answer_free(&a);
		return;
	}
	text = dc_rr_text(&a.rr[idx[0]]);
	json_object_set_new(o, "record", json_string(text));
	if (dkim_key_parse(a.rr[idx[0]].text, a.rr[idx[0]].len, &k, &err) == -1) {
		char *tag = dns_printable(a.rr[idx[0]].text + err.off, err.len);

		findings_add(c->f, "dkim-invalid", "%s: \"%s\": %s", name, tag, err.errstr);
		free(tag);
		goto out;
	}
	json_object_set_new(o, "key_type", json_string(k.key_type));
	json_object_set_new(o, "testing", json_boolean(k.testing));
	json_object_set_new(o, "revoked", json_boolean(k.revoked));
	if (k.revoked) {
		findings_add(c->f, "dkim-revoked", "%s: p= is empty", name);
		goto out;
	}
	bits = dkim_key_bits(&k, &errstr);
	if (bits < 0) {
		findings_add(c->f, "dkim-invalid", "%s: %s", name, errstr);
		goto out;
	}
	json_object_set_new(o, "bits", json_integer(bits));
	if (strcmp(k.key_type, "rsa") == 0 && bits < DNS_CHECK_DKIM_WEAK)
		findings_add(c->f, "dkim-key-weak", "%s: RSA key of %d bits", name, bits);
	else if (strcmp(k.key_type, "rsa") == 0 && bits < DNS_CHECK_DKIM_GOOD)
		findings_add_severity(c->f, "dkim-key-weak", FINDING_WARNING,
		    "%s: RSA key of %d bits (2048 recommended)", name, bits);
	if (k.sha1_only)
		findings_add_severity(c->f, "dkim-key-weak", FINDING_WARNING,
		    "%s: h=sha1 only; RFC 8301 forbids rsa-sha1 signatures", name);
	if (k.testing)
		findings_add(c->f, "dkim-testing", "%s: t=y", name);
out:
	free(text);
	dkim_key_record_free(&k);
	dns_answer_free(&a);
}

/* ---- MTA-STS and TLS-RPT ------------------------------------------------- */

static void
dc_mtasts_policy(struct dc *c, json_t *o)
{
	char host[300], err[512], *body = NULL;
	char *addrs[2 * DNS_CHECK_ADDRS_MAX];
	size_t naddrs = 0, len = 0, line;
	struct dns_answer a4, a6;
	struct mtasts_policy p;
	const char *errstr;
	json_t *mx;

	snprintf(host, sizeof(host), "mta-sts.%s", c->o->domain);
	dc_query(c, host, DNS_TYPE_A, &a4, false);
	dc_query(c, host, DNS_TYPE_AAAA, &a6, false);
	for (size_t i = 0; i < a4.n && naddrs < DNS_CHECK_ADDRS_MAX; i++)
		addrs[naddrs++] = a4.rr[i].text;
	for (size_t i = 0; i < a6.n && naddrs < 2 * DNS_CHECK_ADDRS_MAX; i++)
		addrs[naddrs++] = a6.rr[i].text;
	if (naddrs == 0 && (dc_is_failure(a4.status) || dc_is_failure(a6.status)))
		goto out; /* unknown, not unreachable: dns-timeout or dns-servfail says why */
	if (naddrs == 0) {
		findings_add(c->f, "mta-sts-policy-unreachable",
		    "%s has no A or AAAA record (%s), so the policy cannot be fetched", host,
		    dns_status_name(a4.status));
		goto out;
	}
	if (mtasts_fetch_ex(c->o->domain, addrs, naddrs, c->o->timeout, c->o->cafile,
	        c->o->mta_sts_port, &body, &len, err, sizeof(err)) == -1) {
		findings_add(c->f, "mta-sts-policy-unreachable", "%s", err);
		json_object_set_new(o, "policy_error", json_string(err));
		goto out;
	}
	if (mtasts_policy_parse(body, len, &p, &errstr, &line) == -1) {
		findings_add(c->f, "mta-sts-policy-invalid", "line %zu: %s", line, errstr);
		json_object_set_new(o, "policy_error", json_string(errstr));
		mtasts_policy_free(&p);
		goto out;
	}
	mx = dc_str_array(p.mx, p.n_mx);
	json_object_set_new(o, "policy",
	    json_pack(
	        "{s:s, s:I, s:o}", "mode", p.mode, "max_age", (json_int_t)p.max_age, "mx", mx));
	if (strcmp(p.mode, "enforce") != 0)
		findings_add(c->f, "mta-sts-testing", "mode: %s", p.mode);
	if (p.max_age < DNS_CHECK_MTASTS_MAX_AGE_MIN)
		findings_add(c->f, "mta-sts-max-age-short", "max_age: %lu", p.max_age);
	/* RFC 8461 4.1: every MX the domain publishes must match a pattern */
	if (strcmp(p.mode, "none") != 0) {
		json_t *mxs = json_object_get(c->report, "mx"), *m;
		size_t i;

		json_array_foreach(mxs, i, m)
		{
			const char *h = json_string_value(json_object_get(m, "host"));
			bool ok = false;

			if (h == NULL || strcmp(h, ".") == 0)
				continue;
			for (size_t k = 0; k < p.n_mx && !ok; k++)
				ok = mtasts_mx_matches(p.mx[k], h);
			if (!ok)
				findings_add_severity(c->f, "mta-sts-mx-mismatch",
				    strcmp(p.mode, "enforce") == 0 ? FINDING_ERROR
				                                   : FINDING_WARNING,
				    "MX %s matches no \"mx:\" line of the policy", h);
		}
	}
	mtasts_policy_free(&p);
out:
	free(body);
	dns_answer_free(&a4);
	dns_answer_free(&a6);
}

static void
dc_mtasts(struct dc *c)
{
	char name[300], id[MTASTS_ID_MAX + 1];
	struct dns_answer a;
	size_t idx[DNS_RR_MAX], n;
	const char *errstr;
	json_t *o = json_object();
	char *text;

	json_object_set_new(c->report, "mta_sts", o);
	snprintf(name, sizeof(name), "_mta-sts.%s", c->o->domain);
	n = dc_txt(c, name, mtasts_is_record, &a, idx);
	json_object_set_new(o, "unknown", json_boolean(dc_is_failure(a.status)));
	if (n == 0) {
		if (a.status == DNS_NXDOMAIN || a.status == DNS_NODATA || a.status == DNS_OK)
			findings_add(
			    c->f, "mta-sts-missing", "no \"v=STSv1\" TXT record at %s", name);
		json_object_set_new(o, "record", json_null());
		dns_answer_free(&a);
		return;
	}
	if (n > 1) {
		findings_add(c->f, "mta-sts-invalid",
		    "%s has %zu \"v=STSv1\" records; senders then apply no policy (RFC 8461 3.1)",
		    name, n);
		dns_answer_free(&a);
		return;
	}
	text = dc_rr_text(&a.rr[idx[0]]);
	json_object_set_new(o, "record", json_string(text));
	if (mtasts_record_parse(a.rr[idx[0]].text, a.rr[idx[0]].len, id, &errstr) == -1) {
		/* senders then apply no policy and fetch none (RFC 8461 3.1): neither
		 * do we, or its absence would be a second error for one cause */
		findings_add(c->f, "mta-sts-invalid", "%s: %s: %s", name, text, errstr);
		free(text);
		dns_answer_free(&a);
		return;
	}
	json_object_set_new(o, "id", json_string(id));
	free(text);
	dns_answer_free(&a);
	dc_mtasts_policy(c, o);
}

static void
dc_tlsrpt(struct dc *c)
{
	char name[300], *rua[TLSRPT_RUA_MAX];
	struct dns_answer a;
	size_t idx[DNS_RR_MAX], n, nrua = 0;
	const char *errstr;
	json_t *o = json_object();
	char *text;

	json_object_set_new(c->report, "tls_rpt", o);
	snprintf(name, sizeof(name), "_smtp._tls.%s", c->o->domain);
	n = dc_txt(c, name, tlsrpt_is_record, &a, idx);
	json_object_set_new(o, "unknown", json_boolean(dc_is_failure(a.status)));
	if (n == 0) {
		if (a.status == DNS_NXDOMAIN || a.status == DNS_NODATA || a.status == DNS_OK)
			findings_add(
			    c->f, "tls-rpt-missing", "no \"v=TLSRPTv1\" TXT record at %s", name);
		json_object_set_new(o, "record", json_null());
		dns_answer_free(&a);
		return;
	}
	if (n > 1) {
		findings_add(c->f, "tls-rpt-invalid", "%s has %zu \"v=TLSRPTv1\" records", name, n);
		dns_answer_free(&a);
		return;
	}
	text = dc_rr_text(&a.rr[idx[0]]);
	json_object_set_new(o, "record", json_string(text));
	if (tlsrpt_record_parse(a.rr[idx[0]].text, a.rr[idx[0]].len, rua, &nrua, &errstr) == -1)
		findings_add(c->f, "tls-rpt-invalid", "%s: %s: %s", name, text, errstr);
	else
		json_object_set_new(o, "rua", dc_str_array(rua, nrua));
	for (size_t i = 0; i < nrua; i++)
		free(rua[i]);
	free(text);
	dns_answer_free(&a);
}

/* One finding for all the questions that failed one way. */
static void
dc_failed_finding(struct dc *c, struct dc_failed *d, const char *id, const char *what)
{
	char more[48] = "";

	if (d->listed < d->n)
		snprintf(more, sizeof(more), ", and %zu more", d->n - d->listed);
	if (d->n > 0)
		findings_add(c->f, id, "%s %zu question%s: %s%s", what, d->n, d->n == 1 ? "" : "s",
		    d->text.data != NULL ? d->text.data : "", more);
	buf_free(&d->text);
}

json_t *
dns_check_run(struct dns_resolver *r, const struct dns_check_opts *o, struct findings *f)
{
	struct dc c;
	const char *anchor = dns_resolver_anchor(r), *fwd = dns_resolver_forwarder(r);
	char what[64];

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.o = o;
	c.f = f;
	buf_init(&c.timeouts.text, DC_QUESTIONS_TEXT_MAX);
	buf_init(&c.servfails.text, DC_QUESTIONS_TEXT_MAX);
	c.report = json_pack("{s:s, s:s}", "domain", o->domain, "resolver", fwd ? fwd : "system");
	dc_mx(&c);
	if (!c.nxdomain) {
		/* DMARC before SPF: the "~all" advice depends on the DMARC policy */
		dc_dmarc(&c);
		dc_spf(&c);
		dc_dkim(&c);
		dc_mtasts(&c);
		dc_tlsrpt(&c);
	}
	/* a domain with a null MX only needs SPF as "v=spf1 -all" advice */
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->v[i].kb->id, "mx-null") == 0 && f->v[i].severity == FINDING_INFO) {
			for (size_t k = 0; k < f->n; k++) {
				if (strcmp(f->v[k].kb->id, "spf-missing") == 0)
					f->v[k].severity = FINDING_WARNING;
			}
		}
	}
	snprintf(what, sizeof(what), "no answer within %g s to", o->timeout);
	dc_failed_finding(&c, &c.timeouts, "dns-timeout", what);
	dc_failed_finding(&c, &c.servfails, "dns-servfail", "SERVFAIL or REFUSED for");
	/* whether the domain exists: unknown when its MX question failed */
	json_object_set_new(c.report, "exists",
	    c.nxdomain                                          ? json_false()
	        : json_is_null(json_object_get(c.report, "mx")) ? json_null()
	                                                        : json_true());
	json_object_set_new(c.report, "dnssec",
	    json_pack("{s:s?, s:s}", "trust_anchor", anchor, "status",
	        c.domain_security_known ? dns_security_name(c.domain_security) : "unknown"));
	if (anchor == NULL)
		findings_add(f, "dnssec-no-anchor",
		    "no root trust anchor found (/usr/share/dns/root.key); give --trust-anchor");
	else if (c.domain_security_known && c.domain_security == DNS_INSECURE && !c.nxdomain)
		findings_add(f, "dnssec-unsigned", "answers for %s are not signed (anchor: %s)",
		    o->domain, anchor);
	return c.report;
}

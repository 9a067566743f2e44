/*
 * dns_check: runs the DNS checks of one domain (see dns_check.h).
 *
 * Every DNS question goes through dc_query, which turns resolver trouble
 * into findings once per question (dns-timeout, dns-servfail,
 * dnssec-bogus), so the checks only look at answers. Record text from DNS is
 * parsed raw and shown through dns_printable (JSON needs valid UTF-8).
 * The report object owns all its strings; nothing outlives dns_check_run
 * except it and the findings.
 */
#include "diag/dns_check.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dkim_parse.h"
#include "dns/dmarc_parse.h"
#include "dns/mtasts_fetch.h"
#include "dns/mtasts_parse.h"
#include "diag/spf_check.h"
#include "dns/spf_parse.h"
#include "lib/xalloc.h"

struct dc {
	struct dns_resolver *r;
	const struct dns_check_opts *o;
	struct findings *f;
	json_t *report;
	enum dns_security domain_security;
	bool domain_security_known;
	enum dmarc_policy dmarc_effective; /* UNSET when no valid record */
	int dmarc_pct;
};

/* Asks name/type; resolver trouble becomes a finding unless quiet. */
static enum dns_status
dc_query(struct dc *c, const char *name, int type, struct dns_answer *a, bool quiet)
{
	dns_query(c->r, name, type, a);
	if (quiet)
		return a->status;
	switch (a->status) {
	case DNS_TIMEOUT:
		findings_add(c->f, "dns-timeout", "%s %s: no answer within %g s%s", name,
		    dns_type_name(type), c->o->timeout,
		    findings_has(c->f, "dns-timeout") ? "" : " (later questions may be skipped)");
		break;
	case DNS_SERVFAIL:
		findings_add(c->f, "dns-servfail", "%s %s: rcode %d%s%s", name, dns_type_name(type),
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
	if (a.status == DNS_NXDOMAIN) {
		findings_add(c->f, "mx-missing", "%s does not exist (NXDOMAIN)", d);
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
		if (dc_txt(c, name, dmarc_is_record, &a, idx) == 0)
			findings_add(c->f, "dmarc-rua-unauthorized",
			    "%s=%s: no \"v=DMARC1\" TXT record at %s", tag, uris[i], name);
		dns_answer_free(&a);
	}
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
	/* RFC 7489 6.6.3: no record at the domain: the organizational domain's.
	 * Without a public suffix list that is taken as the parent, when the
	 * parent still has two labels. */
	if (n == 0 && a.status != DNS_TIMEOUT && a.status != DNS_SERVFAIL && parent != NULL &&
	    strchr(parent + 1, '.') != NULL) {
		dns_answer_free(&a);
		snprintf(name, sizeof(name), "_dmarc.%s", parent + 1);
		n = dc_txt(c, name, dmarc_is_record, &a, idx);
		fallback = true;
	}
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "organizational_fallback", json_boolean(fallback));
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
	if (naddrs == 0) {
		findings_add(c->f, "mta-sts-policy-unreachable",
		    "%s has no A or AAAA record (%s), so the policy cannot be fetched", host,
		    dns_status_name(a4.status));
		goto out;
	}
	if (mtasts_fetch(
	        c->o->domain, addrs, naddrs, c->o->timeout, &body, &len, err, sizeof(err)) == -1) {
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
	if (mtasts_record_parse(a.rr[idx[0]].text, a.rr[idx[0]].len, id, &errstr) == -1)
		findings_add(c->f, "mta-sts-invalid", "%s: %s: %s", name, text, errstr);
	else
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

json_t *
dns_check_run(struct dns_resolver *r, const struct dns_check_opts *o, struct findings *f)
{
	struct dc c;
	const char *anchor = dns_resolver_anchor(r), *fwd = dns_resolver_forwarder(r);

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.o = o;
	c.f = f;
	c.report = json_pack("{s:s, s:s}", "domain", o->domain, "resolver", fwd ? fwd : "system");
	dc_mx(&c);
	/* DMARC before SPF: the "~all" advice depends on the DMARC policy */
	dc_dmarc(&c);
	dc_spf(&c);
	/* a domain with a null MX only needs SPF as "v=spf1 -all" advice */
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->v[i].kb->id, "mx-null") == 0 && f->v[i].severity == FINDING_INFO) {
			for (size_t k = 0; k < f->n; k++) {
				if (strcmp(f->v[k].kb->id, "spf-missing") == 0)
					f->v[k].severity = FINDING_WARNING;
			}
		}
	}
	dc_dkim(&c);
	dc_mtasts(&c);
	dc_tlsrpt(&c);
	json_object_set_new(c.report, "dnssec",
	    json_pack("{s:s?, s:s}", "trust_anchor", anchor, "status",
	        c.domain_security_known ? dns_security_name(c.domain_security) : "unknown"));
	if (anchor == NULL)
		findings_add(f, "dnssec-no-anchor",
		    "no root trust anchor found (/usr/share/dns/root.key); give --trust-anchor");
	else if (c.domain_security_known && c.domain_security == DNS_INSECURE)
		findings_add(f, "dnssec-unsigned", "answers for %s are not signed (anchor: %s)",
		    o->domain, anchor);
	return c.report;
}

/* ---- the readable report -------------------------------------------------- */

static const char *
dc_jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

static void
dc_print_list(FILE *out, const char *label, const json_t *arr)
{
	size_t i;
	const json_t *v;

	if (json_array_size(arr) == 0)
		return;
	fprintf(out, "  %s:", label);
	json_array_foreach(arr, i, v)
	{
		fprintf(out, "%s %s", i > 0 ? "," : "", json_string_value(v));
	}
	fprintf(out, "\n");
}

void
dns_check_print(FILE *out, const json_t *rep)
{
	const json_t *mx = json_object_get(rep, "mx"), *m, *x;
	const json_t *spf = json_object_get(rep, "spf"), *dmarc = json_object_get(rep, "dmarc");
	const json_t *dkim = json_object_get(rep, "dkim"), *sts = json_object_get(rep, "mta_sts");
	const json_t *rpt = json_object_get(rep, "tls_rpt"), *tlsa = json_object_get(rep, "tlsa");
	const json_t *sec = json_object_get(rep, "dnssec");
	size_t i, k;

	fprintf(
	    out, "Domain:   %s (resolver %s)\n", dc_jstr(rep, "domain"), dc_jstr(rep, "resolver"));
	fprintf(out, "DNSSEC:   %s (trust anchor %s)\n", dc_jstr(sec, "status"),
	    dc_jstr(sec, "trust_anchor"));
	fprintf(out, "MX:       %s\n", json_array_size(mx) == 0 ? "none" : "");
	json_array_foreach(mx, i, m)
	{
		fprintf(out, "  %lld %s\n",
		    (long long)json_integer_value(json_object_get(m, "preference")),
		    dc_jstr(m, "host"));
		for (int fam = 0; fam < 2; fam++) {
			json_array_foreach(json_object_get(m, fam == 0 ? "a" : "aaaa"), k, x)
			{
				const json_t *ptr = json_object_get(x, "ptr");

				fprintf(out, "    %s  PTR %s\n", dc_jstr(x, "address"),
				    json_array_size(ptr) > 0
				        ? json_string_value(json_array_get(ptr, 0))
				        : "none");
			}
		}
	}
	fprintf(out, "SPF:      %s\n", dc_jstr(spf, "record"));
	if (json_object_get(spf, "record") != NULL &&
	    json_string_value(json_object_get(spf, "record")))
		fprintf(out, "  %lld DNS-querying terms (max 10), %lld void lookups (max 2)\n",
		    (long long)json_integer_value(json_object_get(spf, "lookups")),
		    (long long)json_integer_value(json_object_get(spf, "void_lookups")));
	json_array_foreach(json_object_get(spf, "includes"), i, x)
	{
		fprintf(out, "  %s:%s  %s\n", dc_jstr(x, "via"), dc_jstr(x, "domain"),
		    dc_jstr(x, "record"));
	}
	fprintf(out, "DMARC:    %s  (%s)\n", dc_jstr(dmarc, "record"), dc_jstr(dmarc, "name"));
	if (json_object_get(dmarc, "policy") != NULL)
		fprintf(out, "  policy %s, pct %lld, adkim %s, aspf %s\n", dc_jstr(dmarc, "policy"),
		    (long long)json_integer_value(json_object_get(dmarc, "pct")),
		    dc_jstr(dmarc, "adkim"), dc_jstr(dmarc, "aspf"));
	dc_print_list(out, "rua", json_object_get(dmarc, "rua"));
	if (json_is_null(dkim) || dkim == NULL) {
		fprintf(
		    out, "DKIM:     not checked (give --selector: selectors cannot be listed)\n");
	} else {
		fprintf(
		    out, "DKIM:     %s  (%s)\n", dc_jstr(dkim, "record"), dc_jstr(dkim, "name"));
		if (json_object_get(dkim, "bits") != NULL)
			fprintf(out, "  %s key, %lld bits%s\n", dc_jstr(dkim, "key_type"),
			    (long long)json_integer_value(json_object_get(dkim, "bits")),
			    json_is_true(json_object_get(dkim, "testing")) ? ", testing (t=y)"
			                                                   : "");
	}
	fprintf(out, "MTA-STS:  %s\n", dc_jstr(sts, "record"));
	if ((x = json_object_get(sts, "policy")) != NULL) {
		fprintf(out, "  policy: mode %s, max_age %lld\n", dc_jstr(x, "mode"),
		    (long long)json_integer_value(json_object_get(x, "max_age")));
		dc_print_list(out, "mx", json_object_get(x, "mx"));
	} else if (json_object_get(sts, "policy_error") != NULL) {
		fprintf(out, "  policy: %s\n", dc_jstr(sts, "policy_error"));
	}
	fprintf(out, "TLS-RPT:  %s\n", dc_jstr(rpt, "record"));
	fprintf(out, "TLSA:     %s\n", json_array_size(tlsa) == 0 ? "none" : "");
	json_array_foreach(tlsa, i, m)
	{
		fprintf(out, "  %s (DNSSEC %s)\n", dc_jstr(m, "name"), dc_jstr(m, "dnssec"));
		json_array_foreach(json_object_get(m, "records"), k, x)
		{
			fprintf(out, "    %lld %lld %lld %.16s...\n",
			    (long long)json_integer_value(json_object_get(x, "usage")),
			    (long long)json_integer_value(json_object_get(x, "selector")),
			    (long long)json_integer_value(json_object_get(x, "mtype")),
			    dc_jstr(x, "data"));
		}
	}
	fprintf(out, "\n");
}

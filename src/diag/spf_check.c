/*
 * spf_check: the SPF policy walk (see spf_check.h).
 *
 * State: the path of domains from the top record to the one being walked
 * (loop detection: a domain that includes itself, directly or not), the
 * running counts, and the names of void lookups for the evidence. Findings
 * about the limits are added once, at the end, with the totals.
 */
#include "diag/spf_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns_resolve.h"
#include "dns/spf_parse.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#define SPF_EVIDENCE_MAX 1024

struct spf_walk {
	spf_lookup_cb cb;
	void *arg;
	struct findings *f;
	struct spf_check_result *res;
	const char *path[SPF_CHECK_DEPTH_MAX + 1];
	size_t depth;
	size_t queries;
	struct buf voids; /* "name (type), ..." */
	struct buf chain; /* "include:x, mx, ..." of the counted terms */
};

static void
spf_answers_free(char **ans, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ans[i]);
	free(ans);
}

static enum spf_dns_status
spf_walk_query(
    struct spf_walk *w, const char *name, enum spf_qtype type, char ***ans_r, size_t *n_r)
{
	*ans_r = NULL;
	*n_r = 0;
	if (w->queries >= SPF_CHECK_QUERIES_MAX) {
		w->res->truncated = true;
		return SPF_DNS_FAIL;
	}
	w->queries++;
	return w->cb(w->arg, name, type, ans_r, n_r);
}

static void
spf_walk_note(struct buf *b, const char *s)
{
	/* past the limit the evidence is cut short; that is all */
	if (b->len > 0 && buf_append_str(b, ", ") == -1)
		return;
	if (buf_append_str(b, s) == -1)
		return;
}

static void
spf_walk_void(struct spf_walk *w, const char *name, const char *what)
{
	char tmp[300];

	w->res->void_lookups++;
	snprintf(tmp, sizeof(tmp), "%s (%s)", name, what);
	spf_walk_note(&w->voids, tmp);
}

static bool
spf_walk_on_path(struct spf_walk *w, const char *domain)
{
	for (size_t i = 0; i < w->depth; i++) {
		size_t a = strlen(w->path[i]), b = strlen(domain);

		/* compare without a trailing dot, case-insensitively */
		if (a > 0 && w->path[i][a - 1] == '.')
			a--;
		if (b > 0 && domain[b - 1] == '.')
			b--;
		if (a == b && strncasecmp(w->path[i], domain, a) == 0)
			return true;
	}
	return false;
}

/* Counts the address lookups of an "a" or "exists" term (void if none). */
static void
spf_walk_address(struct spf_walk *w, const char *name, bool both)
{
	char **ans;
	size_t n;
	enum spf_dns_status s4, s6 = SPF_DNS_NODATA;

	s4 = spf_walk_query(w, name, SPF_Q_A, &ans, &n);
	spf_answers_free(ans, n);
	if (both && s4 != SPF_DNS_OK) {
		s6 = spf_walk_query(w, name, SPF_Q_AAAA, &ans, &n);
		spf_answers_free(ans, n);
	}
	if (s4 == SPF_DNS_FAIL || s6 == SPF_DNS_FAIL || s4 == SPF_DNS_OK || s6 == SPF_DNS_OK)
		return;
	spf_walk_void(w, name, s4 == SPF_DNS_NXDOMAIN ? "NXDOMAIN" : "no address");
}

static void
spf_walk_mx(struct spf_walk *w, const char *name)
{
	char **ans;
	size_t n;
	enum spf_dns_status s;

	s = spf_walk_query(w, name, SPF_Q_MX, &ans, &n);
	if (s == SPF_DNS_NXDOMAIN || s == SPF_DNS_NODATA)
		spf_walk_void(w, name, s == SPF_DNS_NXDOMAIN ? "NXDOMAIN" : "no MX");
	if (s == SPF_DNS_OK && n > SPF_MX_NAMES_MAX)
		findings_add(w->f, "spf-too-many-lookups",
		    "mx:%s has %zu MX records; an mx mechanism may look at 10 at most (RFC 7208 "
		    "4.6.4: permerror)",
		    name, n);
	spf_answers_free(ans, n);
}

static void spf_walk_domain(struct spf_walk *w, const char *domain, const char *via, bool top);

static void
spf_walk_record(struct spf_walk *w, const char *domain, struct spf_record *r, bool top)
{
	const struct spf_term *redirect = NULL;
	bool all = false;

	for (size_t i = 0; i < r->n && !all; i++) {
		const struct spf_term *t = &r->terms[i];
		const char *target = t->domain != NULL ? t->domain : domain;

		if (t->kind == SPF_REDIRECT) {
			redirect = t;
			continue;
		}
		if (t->kind == SPF_ALL) {
			/* evaluation stops at "all"; later terms and the
			 * redirect are never used (RFC 7208 5.1, 6.1) */
			all = true;
			if (top)
				w->res->all = t->qualifier;
			else if (t->qualifier == '+')
				findings_add_severity(w->f, "spf-permissive-all", FINDING_ERROR,
				    "%s (included by %s) ends with \"%s\": the include matches every "
				    "sender, so every sender passes",
				    domain, w->path[0], t->text);
			continue;
		}
		if (t->kind == SPF_UNKNOWN_MODIFIER && t->name != NULL) {
			for (enum spf_kind k = SPF_ALL; k <= SPF_EXISTS; k++) {
				if (strcasecmp(t->name, spf_kind_name(k)) == 0)
					findings_add_severity(w->f, "spf-syntax", FINDING_WARNING,
					    "%s: term \"%s\" is an unknown modifier that receivers "
					    "ignore; the mechanism is written \"%s:...\"",
					    domain, t->text, t->name);
			}
		}
		if (t->kind == SPF_PTR)
			findings_add(w->f, "spf-ptr", "%s: \"%s\"", domain, t->text);
		if (!spf_term_is_lookup(t))
			continue;
		w->res->lookups++;
		spf_walk_note(&w->chain, t->text);
		if (spf_term_has_macro(t))
			continue; /* needs a sender to expand: counted, not followed */
		switch (t->kind) {
		case SPF_INCLUDE:
			spf_walk_domain(w, target, "include", false);
			break;
		case SPF_A:
			spf_walk_address(w, target, true);
			break;
		case SPF_MX:
			spf_walk_mx(w, target);
			break;
		case SPF_EXISTS:
			spf_walk_address(w, target, false);
			break;
		default:
			break; /* ptr needs the client's address */
		}
	}
	if (!all && redirect != NULL) {
		/* RFC 7208 6.1: redirect is used only when no mechanism
		 * matched; the target's result is the result */
		w->res->lookups++;
		spf_walk_note(&w->chain, redirect->text);
		if (!spf_term_has_macro(redirect))
			spf_walk_domain(w, redirect->domain, "redirect", top);
	}
}

/* A TXT record that is plainly meant as SPF but is not one: at the top an
 * error of its own (a warning next to a valid record, which receivers
 * use); below an include or redirect the include is missing, saying why. */
static void
spf_walk_near(struct spf_walk *w, const char *domain, const char *via, const char *near,
    const char *why, bool has_valid)
{
	char *pr = dns_printable(near, strlen(near));

	if (w->depth == 0)
		findings_add_severity(w->f, "spf-version-invalid",
		    has_valid ? FINDING_WARNING : FINDING_ERROR,
		    "%s: \"%s\": %s; receivers ignore it%s", domain, pr, why,
		    has_valid ? " and use the other record" : ": the domain has no SPF");
	else if (!has_valid)
		findings_add(w->f, "spf-include-missing",
		    "%s:%s (from %s) has no SPF record: its TXT \"%s\" is not one (%s); receivers "
		    "return permerror",
		    via, domain, w->path[w->depth - 1], pr, why);
	free(pr);
}

static void
spf_walk_domain(struct spf_walk *w, const char *domain, const char *via, bool top)
{
	char **ans = NULL;
	size_t n = 0, nspf = 0;
	const char *rec = NULL, *near = NULL, *why = NULL;
	size_t reclen = 0;
	enum spf_dns_status s;
	struct spf_record r = {NULL, 0};
	struct spf_parse_error err;
	bool is_top = w->depth == 0;

	if (spf_walk_on_path(w, domain)) {
		findings_add(w->f, "spf-include-loop", "%s=%s is already on the path from %s", via,
		    domain, w->path[0]);
		return;
	}
	if (w->depth >= SPF_CHECK_DEPTH_MAX) {
		w->res->truncated = true;
		return;
	}
	s = spf_walk_query(w, domain, SPF_Q_TXT, &ans, &n);
	if (s == SPF_DNS_FAIL) {
		if (is_top)
			w->res->unknown = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (spf_is_record(ans[i], strlen(ans[i]))) {
			nspf++;
			rec = ans[i];
			reclen = strlen(ans[i]);
		} else if (near == NULL && spf_is_near_record(ans[i], strlen(ans[i]), &why)) {
			near = ans[i];
		}
	}
	if (near != NULL)
		spf_walk_near(w, domain, via, near, why, nspf > 0);
	if (!is_top && (s == SPF_DNS_NXDOMAIN || s == SPF_DNS_NODATA))
		spf_walk_void(w, domain, s == SPF_DNS_NXDOMAIN ? "NXDOMAIN" : "no TXT");
	if (nspf == 0) {
		if (near != NULL)
			goto out; /* named for what is wrong with it, not as missing */
		if (is_top)
			findings_add(w->f, "spf-missing",
			    "no TXT record starting with \"v=spf1\" at %s", domain);
		else
			findings_add(w->f, "spf-include-missing",
			    "%s:%s (from %s) has no SPF record: receivers return permerror", via,
			    domain, w->path[w->depth - 1]);
		goto out;
	}
	if (nspf > 1) {
		/* RFC 7208 4.5: more than one record is a permerror */
		findings_add(w->f, "spf-multiple",
		    "%s has %zu TXT records starting with \"v=spf1\"", domain, nspf);
		goto out;
	}
	if (is_top) {
		w->res->found = true;
		w->res->record = dns_printable(rec, reclen);
	} else {
		char *pr = dns_printable(rec, reclen);

		json_array_append_new(w->res->includes,
		    json_pack("{s:s, s:s, s:s}", "domain", domain, "via", via, "record", pr));
		free(pr);
	}
	if (spf_parse(rec, reclen, &r, &err) == -1) {
		char *term = dns_printable(rec + err.off, err.len);

		findings_add(w->f, "spf-syntax", "%s: term \"%s\": %s", domain, term, err.errstr);
		free(term);
		goto out;
	}
	w->path[w->depth++] = domain;
	spf_walk_record(w, domain, &r, top);
	w->depth--;
out:
	spf_record_free(&r);
	spf_answers_free(ans, n);
}

void
spf_check(const char *domain, spf_lookup_cb cb, void *arg, struct findings *f,
    struct spf_check_result *res)
{
	struct spf_walk w;

	memset(res, 0, sizeof(*res));
	res->includes = json_array();
	memset(&w, 0, sizeof(w));
	w.cb = cb;
	w.arg = arg;
	w.f = f;
	w.res = res;
	buf_init(&w.voids, SPF_EVIDENCE_MAX);
	buf_init(&w.chain, SPF_EVIDENCE_MAX);
	spf_walk_domain(&w, domain, "spf", true);
	if (res->lookups > SPF_LOOKUPS_MAX)
		findings_add(f, "spf-too-many-lookups", "%zu DNS-querying terms (at most %d%s): %s",
		    res->lookups, SPF_LOOKUPS_MAX, res->truncated ? "; stopped counting" : "",
		    w.chain.data ? w.chain.data : "");
	if (res->void_lookups > SPF_VOID_LOOKUPS_MAX)
		findings_add(f, "spf-void-lookups", "%zu lookups with no answer (at most %d): %s",
		    res->void_lookups, SPF_VOID_LOOKUPS_MAX, w.voids.data ? w.voids.data : "");
	buf_free(&w.voids);
	buf_free(&w.chain);
}

void
spf_check_result_free(struct spf_check_result *res)
{
	free(res->record);
	json_decref(res->includes);
	memset(res, 0, sizeof(*res));
}

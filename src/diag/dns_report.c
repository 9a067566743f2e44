/*
 * dns_report: the readable form of a `smtpgate dns` report: the records
 * seen, section by section, from the JSON object dns_check_run made (the
 * --json output is that object itself). A question that got no answer is
 * "unknown", never "none".
 */
#include "diag/dns_report.h"

#include <stdio.h>

static const char *
dns_report_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

static void
dns_report_list(FILE *out, const char *label, const json_t *arr)
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

/* A section's record: the text, "none", or "unknown" when its question
 * got no answer (timeout, SERVFAIL, DNSSEC failure). */
static const char *
dns_report_record(const json_t *o)
{
	const char *s = json_string_value(json_object_get(o, "record"));

	if (s != NULL)
		return s;
	return json_is_true(json_object_get(o, "unknown")) ? "unknown (no answer)" : "none";
}

static void
dns_report_mx(FILE *out, const json_t *mx)
{
	size_t i, k;
	const json_t *m, *x;

	fprintf(out, "MX:       %s\n",
	    json_is_null(mx)               ? "unknown (no answer)"
	        : json_array_size(mx) == 0 ? "none"
	                                   : "");
	json_array_foreach(mx, i, m)
	{
		fprintf(out, "  %lld %s\n",
		    (long long)json_integer_value(json_object_get(m, "preference")),
		    dns_report_str(m, "host"));
		for (int fam = 0; fam < 2; fam++) {
			json_array_foreach(json_object_get(m, fam == 0 ? "a" : "aaaa"), k, x)
			{
				const json_t *ptr = json_object_get(x, "ptr");

				fprintf(out, "    %s  PTR %s\n", dns_report_str(x, "address"),
				    json_array_size(ptr) > 0
				        ? json_string_value(json_array_get(ptr, 0))
				        : "none");
			}
		}
	}
}

static void
dns_report_tlsa(FILE *out, const json_t *mx, const json_t *tlsa)
{
	size_t i, k;
	const json_t *m, *x;

	fprintf(out, "TLSA:     %s\n",
	    json_is_null(mx)                 ? "unknown (no MX answer)"
	        : json_array_size(tlsa) == 0 ? "none"
	                                     : "");
	json_array_foreach(tlsa, i, m)
	{
		fprintf(out, "  %s (DNSSEC %s)\n", dns_report_str(m, "name"),
		    dns_report_str(m, "dnssec"));
		json_array_foreach(json_object_get(m, "records"), k, x)
		{
			fprintf(out, "    %lld %lld %lld %.16s...\n",
			    (long long)json_integer_value(json_object_get(x, "usage")),
			    (long long)json_integer_value(json_object_get(x, "selector")),
			    (long long)json_integer_value(json_object_get(x, "mtype")),
			    dns_report_str(x, "data"));
		}
	}
}

static void
dns_report_auth(FILE *out, const json_t *spf, const json_t *dmarc, const json_t *dkim)
{
	size_t i;
	const json_t *x;

	fprintf(out, "SPF:      %s\n", dns_report_record(spf));
	if (json_string_value(json_object_get(spf, "record")) != NULL)
		fprintf(out, "  %lld DNS-querying terms (max 10), %lld void lookups (max 2)\n",
		    (long long)json_integer_value(json_object_get(spf, "lookups")),
		    (long long)json_integer_value(json_object_get(spf, "void_lookups")));
	json_array_foreach(json_object_get(spf, "includes"), i, x)
	{
		fprintf(out, "  %s:%s  %s\n", dns_report_str(x, "via"), dns_report_str(x, "domain"),
		    dns_report_str(x, "record"));
	}
	fprintf(
	    out, "DMARC:    %s  (%s)\n", dns_report_record(dmarc), dns_report_str(dmarc, "name"));
	if (json_object_get(dmarc, "policy") != NULL)
		fprintf(out, "  policy %s, pct %lld, adkim %s, aspf %s\n",
		    dns_report_str(dmarc, "policy"),
		    (long long)json_integer_value(json_object_get(dmarc, "pct")),
		    dns_report_str(dmarc, "adkim"), dns_report_str(dmarc, "aspf"));
	dns_report_list(out, "rua", json_object_get(dmarc, "rua"));
	if (json_is_null(dkim) || dkim == NULL) {
		fprintf(
		    out, "DKIM:     not checked (give --selector: selectors cannot be listed)\n");
		return;
	}
	fprintf(out, "DKIM:     %s  (%s)\n", dns_report_record(dkim), dns_report_str(dkim, "name"));
	if (json_object_get(dkim, "bits") != NULL)
		fprintf(out, "  %s key, %lld bits%s\n", dns_report_str(dkim, "key_type"),
		    (long long)json_integer_value(json_object_get(dkim, "bits")),
		    json_is_true(json_object_get(dkim, "testing")) ? ", testing (t=y)" : "");
}

void
dns_report_print(FILE *out, const json_t *rep)
{
	const json_t *mx = json_object_get(rep, "mx"), *x;
	const json_t *sts = json_object_get(rep, "mta_sts"), *sec = json_object_get(rep, "dnssec");

	fprintf(out, "Domain:   %s (resolver %s)\n", dns_report_str(rep, "domain"),
	    dns_report_str(rep, "resolver"));
	fprintf(out, "DNSSEC:   %s (trust anchor %s)\n", dns_report_str(sec, "status"),
	    dns_report_str(sec, "trust_anchor"));
	if (json_is_false(json_object_get(rep, "exists"))) {
		fprintf(out, "Exists:   no (NXDOMAIN): no record was looked for\n\n");
		return;
	}
	dns_report_mx(out, mx);
	dns_report_auth(out, json_object_get(rep, "spf"), json_object_get(rep, "dmarc"),
	    json_object_get(rep, "dkim"));
	fprintf(out, "MTA-STS:  %s\n", dns_report_record(sts));
	if ((x = json_object_get(sts, "policy")) != NULL) {
		fprintf(out, "  policy: mode %s, max_age %lld\n", dns_report_str(x, "mode"),
		    (long long)json_integer_value(json_object_get(x, "max_age")));
		dns_report_list(out, "mx", json_object_get(x, "mx"));
	} else if (json_object_get(sts, "policy_error") != NULL) {
		fprintf(out, "  policy: %s\n", dns_report_str(sts, "policy_error"));
	}
	fprintf(out, "TLS-RPT:  %s\n", dns_report_record(json_object_get(rep, "tls_rpt")));
	dns_report_tlsa(out, mx, json_object_get(rep, "tlsa"));
	fprintf(out, "\n");
}

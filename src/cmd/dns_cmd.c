/*
 * dns_cmd: `smtpgate dns DOMAIN` (DESIGN 5.1): checks the DNS records that
 * mail to and from DOMAIN depends on (MX, SPF, DMARC, DKIM for --selector,
 * MTA-STS, TLS-RPT, TLSA, DNSSEC) and prints a report and its findings
 * (diag/dns_check.h), or with --json one object with the same data and a
 * "findings" list.
 *
 * Exit status: 0 when no finding has severity error, 1 otherwise, 2 usage
 * error (or a resolver that cannot be set up).
 */
#include "cmd/cmd.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "diag/dns_check.h"
#include "diag/dns_report.h"
#include "dns/dns_name.h"
#include "dns/dns_resolve.h"
#include "explain/finding.h"
#include "lib/xalloc.h"

#define DNS_CMD_TIMEOUT_DEFAULT 5.0 /* seconds per query */
#define DNS_CMD_TIMEOUT_MAX 120.0

static void
dns_cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate dns DOMAIN [--selector S] [--resolver ADDR[:PORT]] [--timeout SECONDS]\n"
	    "                    [--trust-anchor FILE|none] [--cafile FILE] [--json]\n"
	    "\n"
	    "Checks the DNS records mail for DOMAIN depends on: MX (addresses, PTR), SPF\n"
	    "(syntax, 10-lookup and void-lookup limits), DMARC, DKIM (for --selector),\n"
	    "MTA-STS (TXT and the HTTPS policy), TLS-RPT, TLSA, and their DNSSEC status.\n"
	    "\n"
	    "  -s, --selector S         check the DKIM key at S._domainkey.DOMAIN\n"
	    "  -r, --resolver ADDR      ask this DNS server (ADDR, ADDR:PORT, [V6]:PORT)\n"
	    "                           instead of the ones in /etc/resolv.conf\n"
	    "  -t, --timeout SECONDS    per DNS question and for the HTTPS fetch (default 5)\n"
	    "      --trust-anchor FILE  DNSSEC trust anchor (default: the system's root key);\n"
	    "                           \"none\" disables validation\n"
	    "      --cafile FILE        trust FILE's CAs for the MTA-STS policy's HTTPS\n"
	    "                           certificate instead of the system's roots (a lab)\n"
	    "      --mta-sts-port PORT  fetch the policy from this port, not 443 (a lab)\n"
	    "      --json               one JSON document on stdout\n"
	    "  -h, --help               this text\n"
	    "\n"
	    "Exit status: 0 no finding of severity error, 1 some, 2 usage error.\n");
}

static int
dns_cmd_timeout(const char *arg, double *t_r)
{
	char *end;
	double t = strtod(arg, &end);

	if (*arg == '\0' || *end != '\0' || !(t > 0) || t > DNS_CMD_TIMEOUT_MAX) {
		fprintf(stderr, "smtpgate dns: bad --timeout \"%s\" (0 to 120 s)\n", arg);
		return -1;
	}
	*t_r = t;
	return 0;
}

static int
dns_cmd_port(const char *arg, unsigned *port_r)
{
	char *end;
	long port = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "smtpgate dns: bad --mta-sts-port \"%s\" (1 to 65535)\n", arg);
		return -1;
	}
	*port_r = (unsigned)port;
	return 0;
}

int
dns_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"selector", required_argument, NULL, 's'},
	    {"resolver", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'},
	    {"trust-anchor", required_argument, NULL, 'A'},
	    {"cafile", required_argument, NULL, 'C'},
	    {"mta-sts-port", required_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dns_resolver_opts ro = {NULL, NULL, DNS_CMD_TIMEOUT_DEFAULT};
	struct dns_check_opts co = {NULL, NULL, DNS_CMD_TIMEOUT_DEFAULT, NULL, 0};
	struct dns_resolver *r = NULL;
	struct findings f;
	json_t *rep;
	bool json = false;
	char err[512], *domain = NULL;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:r:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			co.selector = optarg;
			break;
		case 'r':
			ro.resolver = optarg;
			break;
		case 't':
			if (dns_cmd_timeout(optarg, &co.timeout) == -1)
				return 2;
			ro.timeout = co.timeout;
			break;
		case 'A':
			ro.trust_anchor = optarg;
			break;
		case 'C':
			co.cafile = optarg;
			break;
		case 'P':
			if (dns_cmd_port(optarg, &co.mta_sts_port) == -1)
				return 2;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			dns_cmd_usage(stdout);
			return 0;
		default:
			dns_cmd_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		dns_cmd_usage(stderr);
		return 2;
	}
	domain = xstrdup(argv[optind]);
	for (char *p = domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strlen(domain) > 1 && domain[strlen(domain) - 1] == '.')
		domain[strlen(domain) - 1] = '\0';
	if (!dns_name_is_valid(domain)) {
		fprintf(stderr, "smtpgate dns: \"%s\" is not a domain name\n", argv[optind]);
		free(domain);
		return 2;
	}
	if (co.selector != NULL) {
		/* a selector is one or more labels: checked as "S.x" */
		char tmp[300];

		if (strlen(co.selector) > 200 ||
		    (snprintf(tmp, sizeof(tmp), "%s.x", co.selector), !dns_name_is_valid(tmp))) {
			fprintf(stderr, "smtpgate dns: bad --selector \"%s\"\n", co.selector);
			free(domain);
			return 2;
		}
	}
	co.domain = domain;
	r = dns_resolver_new(&ro, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "smtpgate dns: %s\n", err);
		free(domain);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	findings_init(&f);
	rep = dns_check_run(r, &co, &f);
	for (size_t i = 0; i < f.n; i++) {
		char *ev;

		if (strcmp(f.v[i].kb->id, "dnssec-anchor-failed") != 0)
			continue;
		/* validation is impossible through this resolver: check again
		 * without it, and say so */
		ev = xstrdup(f.v[i].evidence != NULL ? f.v[i].evidence : "");
		json_decref(rep);
		findings_free(&f);
		dns_resolver_free(r);
		ro.trust_anchor = "none";
		r = dns_resolver_new(&ro, err, sizeof(err));
		if (r == NULL) {
			fprintf(stderr, "smtpgate dns: %s\n", err);
			free(ev);
			free(domain);
			return 2;
		}
		findings_init(&f);
		rep = dns_check_run(r, &co, &f);
		/* drop the no-anchor advice: the anchor exists, the path fails */
		for (size_t k = 0; k < f.n; k++) {
			if (strcmp(f.v[k].kb->id, "dnssec-no-anchor") == 0) {
				free(f.v[k].evidence);
				memmove(&f.v[k], &f.v[k + 1], (f.n - k - 1) * sizeof(f.v[k]));
				f.n--;
				break;
			}
		}
		findings_add_severity(&f, "dnssec-anchor-failed", FINDING_WARNING,
		    "%s; checked again without DNSSEC validation", ev);
		free(ev);
		break;
	}
	if (json) {
		json_object_set_new(rep, "findings", findings_json(&f));
		if (json_dumpf(rep, stdout, JSON_INDENT(2)) == -1)
			fprintf(stderr, "smtpgate dns: cannot write the JSON document\n");
		printf("\n");
	} else {
		dns_report_print(stdout, rep);
		findings_print(stdout, &f);
	}
	ret = findings_has_error(&f) ? 1 : 0;
	json_decref(rep);
	findings_free(&f);
	dns_resolver_free(r);
	curl_global_cleanup();
	free(domain);
	return ret;
}

/*
 * audit_cmd: `smtpgate audit -c FILE [--json]` (DESIGN 5.1): loads the
 * configuration and reports the findings of diag/audit.h about weak or
 * unsafe settings, each with its cause and fix.
 *
 * Exit status: 0 when no finding has severity error, 1 when one has, 2 usage
 * or configuration error (the config's file:line message on stderr).
 * --json prints one JSON document on stdout:
 *   {"config": FILE, "findings": [{id, severity, evidence, cause, fix}, ...]}
 */
#include "cmd/cmd.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "conf/conf.h"
#include "diag/audit.h"
#include "explain/finding.h"

static void
audit_cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate audit -c FILE [--json]\n"
	    "\n"
	    "Checks the configuration FILE for weak or unsafe settings: TLS ciphers,\n"
	    "listeners that cannot authenticate, CRAM-MD5, relay settings, limits,\n"
	    "certificates (expiry, key match, chain, name) and the permissions of the\n"
	    "passwd file, the JWKS file, the spool and the log; with [cluster], its\n"
	    "Redis (reachable, the password, the node name, the key prefix, balancers\n"
	    "missing from proxy_from). Each finding has an\n"
	    "id (doc/findings.md), a severity, what was seen, the cause and the fix.\n"
	    "\n"
	    "  -c, --config FILE   the configuration file (smtpgate.conf(5))\n"
	    "      --json          one JSON document on stdout\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Exit status: 0 no finding of severity error, 1 at least one, 2 usage or\n"
	    "configuration error.\n");
}

int
audit_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	bool json = false;
	char err[1024] = "";
	struct findings f;
	struct conf *c;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			audit_cmd_usage(stdout);
			return 0;
		default:
			audit_cmd_usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		audit_cmd_usage(stderr);
		return 2;
	}
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 2;
	}
	findings_init(&f);
	audit_conf(c, time(NULL), &f);
	rc = findings_has_error(&f) ? 1 : 0;
	if (json) {
		json_t *doc =
		    json_pack("{s:s, s:o}", "config", path, "findings", findings_json(&f));

		if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2)) == -1)
			rc = 1;
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		printf("Audit of %s\n\n", path);
		findings_print(stdout, &f);
	}
	findings_free(&f);
	conf_free(c);
	return rc;
}

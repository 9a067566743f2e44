/*
 * serve_cmd: `smtpgate serve -c FILE [--check]`, the front end of the
 * daemon (server/serve.h).
 */
#include "cmd/cmd.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "server/child.h"
#include "server/serve.h"

static void
serve_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate serve -c FILE [--check]\n"
	    "\n"
	    "Runs the server in the foreground with the configuration FILE.\n"
	    "  -c, --config FILE  the configuration file (smtpgate.conf(5))\n"
	    "      --check        validate the configuration, certificates, users\n"
	    "                     and spool, print the findings of `smtpgate audit`,\n"
	    "                     then exit: 0 if usable, 2 if not (or if a finding\n"
	    "                     is an error)\n"
	    "  -h, --help         this text\n"
	    "Signals: SIGHUP reloads the configuration, certificates and users;\n"
	    "SIGTERM stops accepting, lets sessions finish, then exits.\n"
	    "\n"
	    "Exit status: 0 stopped by SIGTERM or SIGINT (or --check passed), 2 usage,\n"
	    "configuration or start-up error (e.g. a listen address already in use).\n");
}

int
serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    /* internal: how the server starts its own child processes */
	    {"child", required_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *child = NULL;
	bool check = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'x':
			child = optarg;
			break;
		case 'h':
			serve_usage(stdout);
			return 0;
		default:
			serve_usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		serve_usage(stderr);
		return 2;
	}
	if (child != NULL)
		return child_main(child, path);
	return serve_daemon(path, check);
}

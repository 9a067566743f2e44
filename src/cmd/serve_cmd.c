/*
 * serve_cmd: `smtpgate serve -c FILE [--check]`, the front end of the
 * daemon (server/serve.h).
 */
#include "cmd/cmd.h"

#include <getopt.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server/auth_proc.h"
#include "server/child.h"
#include "server/parent.h"
#include "server/relay_proc.h"
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

/* A process the server starts itself (server/child.h): its role, with its
 * control socket as descriptor CHILD_CTL_FD and nothing else of the parent's. */
static int
serve_cmd_child(const char *role, const char *path)
{
	if (close_range(CHILD_CTL_FD + 1, ~0U, 0) == -1) {
		fprintf(stderr, "smtpgate: close_range: %s\n", strerror(errno));
		return 2;
	}
	if (strcmp(role, "auth") == 0)
		return auth_proc_main(path, CHILD_CTL_FD);
	if (strcmp(role, "smtp") == 0)
		return serve_smtp_main(path, CHILD_CTL_FD);
	if (strcmp(role, "relay") == 0)
		return relay_proc_main(path, CHILD_CTL_FD);
	fprintf(stderr, "smtpgate: unknown --child %s\n", role);
	return 2;
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
		return serve_cmd_child(child, path);
	return parent_main(path, check);
}

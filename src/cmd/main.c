/*
 * main: the smtpgate command: dispatches to the subcommands of DESIGN 5.1.
 * Exit status: 0 success, 1 the thing checked or done failed, 2 usage or
 * configuration error.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "server/notify.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} main_commands[] = {
    {"init", init_main, "write a first configuration, passwd file and certificate"},
    {"serve", serve_main, "run the server in the foreground"},
    {"user", user_main, "manage the passwd file"},
    {"queue", queue_cmd_main, "inspect and manage the spool"},
    {"ban", ban_main, "list, add or lift bans of client addresses"},
    {"probe", probe_main, "diagnose an SMTP server: TLS, AUTH, sending"},
    {"dns", dns_main, "check a domain's mail DNS records"},
    {"audit", audit_main, "check a configuration for weak or unsafe settings"},
};

static void
main_usage(FILE *f)
{
	fprintf(f, "usage: smtpgate COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(main_commands) / sizeof(main_commands[0]); i++)
		fprintf(f, "  %-8s %s\n", main_commands[i].name, main_commands[i].summary);
	fprintf(f, "\nRun 'smtpgate COMMAND --help' for the options of a command.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("smtpgate %s\nsystemd notification: %s\n", SMTPGATE_VERSION,
		    notify_built() ? "yes" : "no");
		return 0;
	}
	for (size_t i = 0; i < sizeof(main_commands) / sizeof(main_commands[0]); i++) {
		if (strcmp(argv[1], main_commands[i].name) == 0)
			return main_commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "smtpgate: unknown command \"%s\"\n", argv[1]);
	main_usage(stderr);
	return 2;
}

/*
 * probe_cmd: `smtpgate probe HOST[:PORT] [options]` (DESIGN 5.1): parses the
 * command line and the SMTP* environment variables (flags win), reads the
 * password from stdin when asked, and runs diag/probe. Exit 0 when no
 * finding has severity error, 1 otherwise, 2 for usage errors.
 */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"
#include "diag/probe.h"
#include "lib/xalloc.h"
#include "cmd/cmd.h"

#define PROBE_CMD_TIMEOUT_DEFAULT 10 /* seconds per step */
#define PROBE_CMD_TIMEOUT_MAX 3600

static void
probe_cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate probe HOST[:PORT] [--starttls|--tls|--plain] [--user U]\n"
	    "                      [--password-stdin] [--auth MECH] [--from A --to B]\n"
	    "                      [--cafile F] [--sni NAME] [--helo NAME] [--timeout SECONDS]\n"
	    "                      [--resolver ADDR[:PORT]] [-q|--quiet] [--json]\n"
	    "\n"
	    "Connects to an SMTP server, reports its banner, capabilities, TLS and certificate,\n"
	    "authenticates with --user (each offered mechanism, or --auth MECH), sends a test\n"
	    "message with --from/--to, and explains every problem found (cause and fix).\n"
	    "The report starts with the result and the findings; the transcript comes last.\n"
	    "-q, --quiet: print the findings only (\"No problems found.\" when there are none);\n"
	    "--json is not affected.\n"
	    "Default port 587 with STARTTLS; 465 means implicit TLS; 25 STARTTLS when offered.\n"
	    "Environment (where no flag is given): SMTPACCOUNT, SMTPPASSWORD, SMTPAUTHMETHOD,\n"
	    "SMTPENABLESTARTTLS (yes/no), SMTPOPENSSLVERIFYMODE (none: report only),\n"
	    "SMTPFROMADDRESS.\n"
	    "Exit status: 0 no error found, 1 errors found, 2 usage error.\n");
}

/* Splits "host", "host:port", "[v6]:port", "v6" into host and port. */
static int
probe_cmd_target(const char *arg, char **host_r, char **port_r)
{
	const char *colon;

	*port_r = NULL;
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (end == NULL || end == arg + 1 || (end[1] != '\0' && end[1] != ':'))
			return -1;
		*host_r = xstrndup(arg + 1, (size_t)(end - arg - 1));
		if (end[1] == ':')
			*port_r = xstrdup(end + 2);
	} else if ((colon = strchr(arg, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		*host_r = xstrndup(arg, (size_t)(colon - arg));
		*port_r = xstrdup(colon + 1);
	} else {
		*host_r = xstrdup(arg);
	}
	if (**host_r == '\0')
		return -1;
	if (*port_r != NULL) {
		char *end;
		unsigned long v = strtoul(*port_r, &end, 10);

		if (**port_r == '\0' || *end != '\0' || v == 0 || v > 65535)
			return -1;
	}
	return 0;
}

/* One line from stdin (CR/LF stripped) into a malloc'd secret. */
static char *
probe_cmd_read_secret(size_t *len_r)
{
	char *s = xmalloc(CLIENT_SECRET_MAX + 2);
	size_t n;

	if (fgets(s, CLIENT_SECRET_MAX + 2, stdin) == NULL) {
		xfree_secret(s, CLIENT_SECRET_MAX + 2);
		return NULL;
	}
	n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	*len_r = n;
	return s;
}

static bool
probe_cmd_truthy(const char *v)
{
	return !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
	    !strcasecmp(v, "on");
}

/* The command line and the environment, and what probe_main frees. */
struct probe_cmd_args {
	struct probe_opts o; /* its strings point into argv, the environment or here */
	bool password_stdin;
	bool help; /* --help was given and answered */
	int modes; /* how many of --starttls, --tls, --plain */
	char *host, *port, *mech;
	char *secret; /* wiped at free */
};

/* One option of getopt_long (ch, optarg) into a. -1 after a message on
 * stderr: a usage error. */
static int
probe_cmd_option(struct probe_cmd_args *a, int ch)
{
	switch (ch) {
	case 'S':
		a->o.mode = PROBE_MODE_STARTTLS;
		a->modes++;
		break;
	case 'T':
		a->o.mode = PROBE_MODE_TLS;
		a->modes++;
		break;
	case 'P':
		a->o.mode = PROBE_MODE_PLAIN;
		a->modes++;
		break;
	case 'u':
		a->o.user = optarg;
		break;
	case 'p':
		a->password_stdin = true;
		break;
	case 'a':
		free(a->mech);
		a->mech = xstrdup(optarg);
		break;
	case 'f':
		a->o.from = optarg;
		break;
	case 't':
		a->o.to = optarg;
		break;
	case 'c':
		a->o.cafile = optarg;
		break;
	case 'n':
		a->o.sni = optarg;
		break;
	case 'H':
		a->o.helo = optarg;
		break;
	case 'w': {
		char *end;
		long v = strtol(optarg, &end, 10);

		if (*optarg == '\0' || *end != '\0' || v < 1 || v > PROBE_CMD_TIMEOUT_MAX) {
			fprintf(stderr, "smtpgate probe: --timeout takes 1..%d seconds\n",
			    PROBE_CMD_TIMEOUT_MAX);
			return -1;
		}
		a->o.timeout_s = (int)v;
		break;
	}
	case 'r':
		a->o.resolver = optarg;
		break;
	case 'j':
		a->o.json = true;
		break;
	case 'q':
		a->o.quiet = true;
		break;
	default:
		probe_cmd_usage(stderr);
		return -1;
	}
	return 0;
}

/* The options and HOST[:PORT] into a. -1 when the command ends here: after
 * --help (a->help) or a usage error (a message on stderr). */
static int
probe_cmd_parse(struct probe_cmd_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"starttls", no_argument, NULL, 'S'},
	    {"tls", no_argument, NULL, 'T'},
	    {"plain", no_argument, NULL, 'P'},
	    {"user", required_argument, NULL, 'u'},
	    {"password-stdin", no_argument, NULL, 'p'},
	    {"auth", required_argument, NULL, 'a'},
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"cafile", required_argument, NULL, 'c'},
	    {"sni", required_argument, NULL, 'n'},
	    {"helo", required_argument, NULL, 'H'},
	    {"timeout", required_argument, NULL, 'w'},
	    {"resolver", required_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		if (ch == 'h') {
			probe_cmd_usage(stdout);
			a->help = true;
			return -1;
		}
		if (probe_cmd_option(a, ch) == -1)
			return -1;
	}
	if (optind != argc - 1 || a->modes > 1) {
		if (a->modes > 1)
			fprintf(stderr,
			    "smtpgate probe: --starttls, --tls and --plain exclude each other\n");
		probe_cmd_usage(stderr);
		return -1;
	}
	if (probe_cmd_target(argv[optind], &a->host, &a->port) == -1) {
		fprintf(stderr, "smtpgate probe: bad target \"%s\" (HOST[:PORT])\n", argv[optind]);
		return -1;
	}
	a->o.host = a->host;
	a->o.port = a->port;
	return 0;
}

/* DESIGN 5.1: the environment where no flag is given (SMTPPASSWORD is
 * read by probe_cmd_secret, only when it is needed). */
static void
probe_cmd_env(struct probe_cmd_args *a)
{
	const char *env;

	if (a->o.user == NULL && (env = getenv("SMTPACCOUNT")) != NULL && *env)
		a->o.user = env;
	if (a->mech == NULL && (env = getenv("SMTPAUTHMETHOD")) != NULL && *env)
		a->mech = xstrdup(env);
	if (a->o.from == NULL && (env = getenv("SMTPFROMADDRESS")) != NULL && *env)
		a->o.from = env;
	if (a->modes == 0 && (env = getenv("SMTPENABLESTARTTLS")) != NULL && *env &&
	    (a->port == NULL || strcmp(a->port, "465") != 0))
		a->o.mode = probe_cmd_truthy(env) ? PROBE_MODE_STARTTLS : PROBE_MODE_PLAIN;
	if ((env = getenv("SMTPOPENSSLVERIFYMODE")) != NULL && !strcasecmp(env, "none"))
		a->o.verify_none = true;
	if ((env = getenv("SMTPGATE_PROBE_BACKOFF_MS")) != NULL) /* tests only */
		a->o.backoff_ms = (unsigned)strtoul(env, NULL, 10);
}

/* --auth (or SMTPAUTHMETHOD) in upper case, if the client knows it. -1
 * after a message on stderr. */
static int
probe_cmd_mech(struct probe_cmd_args *a)
{
	if (a->mech == NULL)
		return 0;
	for (char *m = a->mech; *m; m++)
		*m = (char)toupper((unsigned char)*m);
	if (!client_sasl_is_supported(a->mech)) {
		fprintf(stderr, "smtpgate probe: unknown mechanism \"%s\"; known:", a->mech);
		for (size_t i = 0; client_sasl_mechs[i] != NULL; i++)
			fprintf(stderr, " %s", client_sasl_mechs[i]);
		fprintf(stderr, "\n");
		return -1;
	}
	a->o.mech = a->mech;
	return 0;
}

/* The password of --user: from stdin with --password-stdin, else
 * SMTPPASSWORD. -1 after a message on stderr. */
static int
probe_cmd_secret(struct probe_cmd_args *a)
{
	const char *env;

	if (a->password_stdin && a->o.user == NULL) {
		fprintf(stderr, "smtpgate probe: --password-stdin needs --user (or SMTPACCOUNT)\n");
		return -1;
	}
	if (a->o.user == NULL)
		return 0;
	if (a->password_stdin) {
		a->secret = probe_cmd_read_secret(&a->o.secretlen);
		if (a->secret == NULL) {
			fprintf(stderr, "smtpgate probe: no password on stdin\n");
			return -1;
		}
	} else if ((env = getenv("SMTPPASSWORD")) != NULL) {
		a->secret = xstrdup(env);
		a->o.secretlen = strlen(a->secret);
	} else {
		fprintf(stderr, "smtpgate probe: --user needs --password-stdin or SMTPPASSWORD\n");
		return -1;
	}
	a->o.secret = a->secret;
	return 0;
}

/* --to needs --from; --from (or SMTPFROMADDRESS) alone sends nothing. -1
 * after a message on stderr. */
static int
probe_cmd_envelope(struct probe_cmd_args *a)
{
	if ((a->o.to != NULL) != (a->o.from != NULL) && a->o.to != NULL) {
		fprintf(stderr, "smtpgate probe: --to needs --from (or SMTPFROMADDRESS)\n");
		return -1;
	}
	if (a->o.to == NULL)
		a->o.from = NULL;
	return 0;
}

int
probe_main(int argc, char **argv)
{
	struct probe_cmd_args a;
	int status = 2;

	/* the client writes TLS records with OpenSSL's socket BIO, which
	 * cannot pass MSG_NOSIGNAL: a server that closes the connection must
	 * cost an EPIPE (a finding), not the process (as serve.c does) */
	signal(SIGPIPE, SIG_IGN);
	memset(&a, 0, sizeof(a));
	a.o.timeout_s = PROBE_CMD_TIMEOUT_DEFAULT;
	if (probe_cmd_parse(&a, argc, argv) == -1) {
		if (a.help)
			status = 0;
		goto out;
	}
	probe_cmd_env(&a);
	if (probe_cmd_mech(&a) == -1 || probe_cmd_secret(&a) == -1 || probe_cmd_envelope(&a) == -1)
		goto out;
	status = probe_run(&a.o, stdout);
	fflush(stdout);
out:
	xfree_secret_str(a.secret);
	free(a.mech);
	free(a.host);
	free(a.port);
	return status;
}

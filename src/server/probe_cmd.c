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
#include "server/cmd.h"

#define PROBE_CMD_TIMEOUT_DEFAULT 10 /* seconds per step */
#define PROBE_CMD_TIMEOUT_MAX 3600

static void
probe_cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate probe HOST[:PORT] [--starttls|--tls|--plain] [--user U]\n"
	    "                      [--password-stdin] [--auth MECH] [--from A --to B]\n"
	    "                      [--cafile F] [--sni NAME] [--helo NAME] [--timeout SECONDS]\n"
	    "                      [--resolver ADDR[:PORT]] [--json]\n"
	    "\n"
	    "Connects to an SMTP server, reports its banner, capabilities, TLS and certificate,\n"
	    "authenticates with --user (each offered mechanism, or --auth MECH), sends a test\n"
	    "message with --from/--to, and explains every problem found (cause and fix).\n"
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

int
probe_main(int argc, char **argv)
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
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct probe_opts o;
	bool password_stdin = false;
	char *host = NULL, *port = NULL, *secret = NULL, *mech = NULL;
	const char *env;
	int ch, status = 2, modes = 0;

	/* the client writes TLS records with OpenSSL's socket BIO, which
	 * cannot pass MSG_NOSIGNAL: a server that closes the connection must
	 * cost an EPIPE (a finding), not the process (as serve.c does) */
	signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof(o));
	o.timeout_s = PROBE_CMD_TIMEOUT_DEFAULT;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			o.mode = PROBE_MODE_STARTTLS;
			modes++;
			break;
		case 'T':
			o.mode = PROBE_MODE_TLS;
			modes++;
			break;
		case 'P':
			o.mode = PROBE_MODE_PLAIN;
			modes++;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			password_stdin = true;
			break;
		case 'a':
			free(mech);
			mech = xstrdup(optarg);
			break;
		case 'f':
			o.from = optarg;
			break;
		case 't':
			o.to = optarg;
			break;
		case 'c':
			o.cafile = optarg;
			break;
		case 'n':
			o.sni = optarg;
			break;
		case 'H':
			o.helo = optarg;
			break;
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 1 || v > PROBE_CMD_TIMEOUT_MAX) {
				fprintf(stderr, "smtpgate probe: --timeout takes 1..%d seconds\n",
				    PROBE_CMD_TIMEOUT_MAX);
				goto out;
			}
			o.timeout_s = (int)v;
			break;
		}
		case 'r':
			o.resolver = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			probe_cmd_usage(stdout);
			status = 0;
			goto out;
		default:
			probe_cmd_usage(stderr);
			goto out;
		}
	}
	if (optind != argc - 1 || modes > 1) {
		if (modes > 1)
			fprintf(stderr,
			    "smtpgate probe: --starttls, --tls and --plain exclude each other\n");
		probe_cmd_usage(stderr);
		goto out;
	}
	if (probe_cmd_target(argv[optind], &host, &port) == -1) {
		fprintf(stderr, "smtpgate probe: bad target \"%s\" (HOST[:PORT])\n", argv[optind]);
		goto out;
	}
	o.host = host;
	o.port = port;

	/* DESIGN 5.1: the environment where no flag is given */
	if (o.user == NULL && (env = getenv("SMTPACCOUNT")) != NULL && *env)
		o.user = env;
	if (mech == NULL && (env = getenv("SMTPAUTHMETHOD")) != NULL && *env)
		mech = xstrdup(env);
	if (o.from == NULL && (env = getenv("SMTPFROMADDRESS")) != NULL && *env)
		o.from = env;
	if (modes == 0 && (env = getenv("SMTPENABLESTARTTLS")) != NULL && *env &&
	    (port == NULL || strcmp(port, "465") != 0))
		o.mode = probe_cmd_truthy(env) ? PROBE_MODE_STARTTLS : PROBE_MODE_PLAIN;
	if ((env = getenv("SMTPOPENSSLVERIFYMODE")) != NULL && !strcasecmp(env, "none"))
		o.verify_none = true;
	if ((env = getenv("SMTPGATE_PROBE_BACKOFF_MS")) != NULL) /* tests only */
		o.backoff_ms = (unsigned)strtoul(env, NULL, 10);

	if (mech != NULL) {
		for (char *m = mech; *m; m++)
			*m = (char)toupper((unsigned char)*m);
		if (!client_sasl_is_supported(mech)) {
			fprintf(stderr, "smtpgate probe: unknown mechanism \"%s\"; known:", mech);
			for (size_t i = 0; client_sasl_mechs[i] != NULL; i++)
				fprintf(stderr, " %s", client_sasl_mechs[i]);
			fprintf(stderr, "\n");
			goto out;
		}
		o.mech = mech;
	}
	if (password_stdin && o.user == NULL) {
		fprintf(stderr, "smtpgate probe: --password-stdin needs --user (or SMTPACCOUNT)\n");
		goto out;
	}
	if (o.user != NULL) {
		if (password_stdin) {
			secret = probe_cmd_read_secret(&o.secretlen);
			if (secret == NULL) {
				fprintf(stderr, "smtpgate probe: no password on stdin\n");
				goto out;
			}
		} else if ((env = getenv("SMTPPASSWORD")) != NULL) {
			secret = xstrdup(env);
			o.secretlen = strlen(secret);
		} else {
			fprintf(stderr,
			    "smtpgate probe: --user needs --password-stdin or SMTPPASSWORD\n");
			goto out;
		}
		o.secret = secret;
	}
	if ((o.to != NULL) != (o.from != NULL) && o.to != NULL) {
		fprintf(stderr, "smtpgate probe: --to needs --from (or SMTPFROMADDRESS)\n");
		goto out;
	}
	if (o.to == NULL)
		o.from = NULL; /* SMTPFROMADDRESS alone sends nothing */
	status = probe_run(&o, stdout);
	fflush(stdout);
out:
	xfree_secret_str(secret);
	free(mech);
	free(host);
	free(port);
	return status;
}

/*
 * serve: `smtpgate serve -c FILE [--check]`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "server/cmd.h"

int
serve_main(int argc, char **argv)
{
	const char *path = NULL;
	int check = 0, ch;
	char err[1024];
	struct conf *c;
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'h':
			printf("usage: smtpgate serve -c FILE [--check]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (path == NULL) {
		fprintf(stderr, "smtpgate serve: -c FILE is required\n");
		return 2;
	}
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 2;
	}
	conf_free(c);
	if (check)
		return 0;
	fprintf(stderr, "smtpgate serve: not yet built\n");
	return 2;
}

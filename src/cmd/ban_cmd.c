/*
 * ban_cmd: `smtpgate ban list|add|del [ADDR] -c FILE [--json]`, the client
 * of the running server's [admin] /bans routes (server/ban_routes.h).
 *
 * The command asks the running server through [admin] when the section is
 * configured and something answers there; otherwise (no [admin], or nothing
 * listening: the server is stopped) it reads and rewrites the state file
 * SPOOL/bans.json itself, atomically. Either way the output says which. A
 * server that runs without [admin] does not see a state-file edit until it
 * restarts, and writes its own list over it at its next ban change.
 *
 * Exit status: 0 done, 1 no such ban or the server refused, 2 usage or
 * configuration error.
 */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "net/listener.h"
#include "policy/limiter.h"
#include "cluster/cluster_sync.h"
#include "cmd/admin_cmd.h"
#include "cmd/cmd.h"
#include "cmd/json_out.h"
#include "server/ban_routes.h"
#include "server/server.h"

#define BAN_REPLY_MAX (4 * 1024 * 1024)

/* --- the command ------------------------------------------------------------ */

struct ban_opts {
	const char *conf_path;
	const char *action;
	const char *addr;
	const char *seconds;
	bool json;
	bool all;
};

static void
ban_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate ban list -c FILE [--all] [--json]\n"
	    "       smtpgate ban add ADDR[/PREFIX] -c FILE [--seconds DURATION] [--json]\n"
	    "       smtpgate ban del ADDR[/PREFIX] -c FILE [--json]\n"
	    "\n"
	    "Lists, adds or lifts bans of client addresses or networks. With [cluster]\n"
	    "it acts on the state the nodes share in Redis (every node applies it);\n"
	    "else (or when Redis does not answer) it talks to the running server\n"
	    "through its [admin] listener when there is one, else edits the state\n"
	    "file SPOOL/bans.json (the output says which).\n"
	    "  -c, --config FILE      the server's configuration file\n"
	    "      --seconds DURATION how long an added ban lasts (\"90s\", \"10m\", \"2h\";\n"
	    "                         default: [limits] ban_time)\n"
	    "      --all              list remembered offences whose ban has ended too\n"
	    "      --json             one JSON document on stdout\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Exit status: 0 done, 1 no such ban or the server refused, 2 usage or\n"
	    "configuration error.\n");
}

/* Where the answer came from, for the output. */
struct ban_source {
	bool server;
	bool cluster; /* the shared state in Redis (where: its URL) */
	char where[512]; /* admin address, or the state file path */
	char why[128]; /* why not the server */
};

/* Both sources give times in unix seconds (the state file's and the admin
 * API's format); --json prints them as RFC 3339 (json_out.h). */
static void
ban_print_json(json_t *doc)
{
	json_t *b;
	size_t i;

	json_out_time_member(doc, "until");
	json_array_foreach(json_object_get(doc, "bans"), i, b)
	{
		json_out_time_member(b, "until");
		json_out_time_member(b, "last");
	}
	if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == -1)
		perror("smtpgate: stdout");
	putchar('\n');
	json_decref(doc);
}

static void
ban_print_source(const struct ban_source *src)
{
	if (src->cluster)
		printf("source: the shared state of the cluster (Redis at %s)\n", src->where);
	else if (src->server)
		printf("source: the running server (admin API at %s)\n", src->where);
	else
		printf("source: the state file %s (%s)\n", src->where, src->why);
}

static void
ban_add_source(json_t *doc, const struct ban_source *src)
{
	json_object_set_new(doc, "source",
	    json_string(src->cluster ? "cluster"
	            : src->server    ? "server"
	                             : "state_file"));
	json_object_set_new(doc,
	    src->cluster      ? "redis"
	        : src->server ? "admin"
	                      : "state_file",
	    json_string(src->where));
}

static void
ban_print_list(json_t *doc, const struct ban_source *src, bool json)
{
	json_t *bans = json_object_get(doc, "bans"), *b;
	size_t i;

	if (json) {
		ban_add_source(doc, src);
		ban_print_json(json_incref(doc));
		return;
	}
	ban_print_source(src);
	if (json_array_size(bans) == 0) {
		printf("no bans\n");
		return;
	}
	printf("%-42s %10s %8s  %s\n", "ADDRESS", "SECONDS", "OFFENCES", "REASON");
	json_array_foreach(bans, i, b)
	{
		printf("%-42s %10lld %8lld  %s\n", json_string_value(json_object_get(b, "address")),
		    (long long)json_integer_value(json_object_get(b, "seconds")),
		    (long long)json_integer_value(json_object_get(b, "offences")),
		    json_string_value(json_object_get(b, "reason")));
	}
}

/* Through [admin]: 0 done (printed), 1 the server refused, 2 no server
 * (fall back to the state file), -1 an error (printed). */
static int
ban_via_admin(const struct conf *c, const struct ban_opts *o, const char *canon, unsigned seconds,
    struct ban_source *src)
{
	char target[128], err[1024];
	struct buf out;
	char *body = NULL;
	const char *method = "GET";
	json_t *doc;
	json_error_t je;
	int status, rc = -1;

	src->server = true;
	snprintf(src->where, sizeof(src->where), "%s", c->admin_address);
	if (strcmp(o->action, "list") == 0) {
		snprintf(target, sizeof(target), "/bans%s", o->all ? "?all=1" : "");
	} else if (strcmp(o->action, "add") == 0) {
		method = "POST";
		snprintf(target, sizeof(target), "/bans");
		doc = json_pack("{s:s, s:i}", "address", canon, "seconds", (int)seconds);
		body = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
	} else {
		method = "DELETE";
		snprintf(target, sizeof(target), "/bans/%s", canon);
	}
	buf_init(&out, BAN_REPLY_MAX);
	if (admin_cmd_call(c, method, target, body, body != NULL ? strlen(body) : 0, &out, &status,
	        err, sizeof(err)) == -1) {
		if (errno == ECONNREFUSED) {
			snprintf(src->why, sizeof(src->why),
			    "nothing answers at [admin] %s: the server is not running",
			    c->admin_address);
			rc = 2;
		} else {
			fprintf(stderr, "smtpgate: %s\n", err);
		}
		goto out;
	}
	if (status == 401) {
		/* not a fallback case: the server runs and refused us */
		admin_cmd_explain_401(c, err, sizeof(err));
		fprintf(stderr, "smtpgate: %s\n", err);
		if (o->json) {
			doc = json_pack("{s:s, s:i}", "error", err, "status", status);
			ban_add_source(doc, src);
			ban_print_json(doc);
		}
		rc = 1;
		goto out;
	}
	doc = json_loadb(out.data != NULL ? out.data : "", out.len, 0, &je);
	if (doc == NULL) {
		fprintf(stderr, "smtpgate: the server answered %d with no JSON\n", status);
		goto out;
	}
	if (status != 200) {
		const char *e = json_string_value(json_object_get(doc, "error"));

		if (o->json) {
			ban_add_source(doc, src);
			ban_print_json(doc);
		} else {
			fprintf(stderr, "smtpgate: the server refused: %s\n", e ? e : "?");
			json_decref(doc);
		}
		rc = 1;
		goto out;
	}
	if (strcmp(o->action, "list") == 0) {
		ban_print_list(doc, src, o->json);
	} else if (o->json) {
		ban_add_source(doc, src);
		ban_print_json(json_incref(doc));
	} else {
		ban_print_source(src);
		if (strcmp(o->action, "add") == 0)
			printf("banned %s for %u s\n", canon, seconds);
		else
			printf("lifted the ban of %s\n", canon);
	}
	json_decref(doc);
	rc = 0;
out:
	free(body);
	buf_free(&out);
	return rc;
}

/* The shared bans of the cluster as the admin API lists them. */
static json_t *
ban_cluster_list_json(const struct limiter_ban *b, size_t n, int64_t now)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		json_int_t left = b[i].until_ms > now ? (b[i].until_ms - now + 999) / 1000 : 0;

		json_array_append_new(arr,
		    json_pack("{s:s, s:I, s:I, s:I, s:i, s:s}", "address", b[i].address, "seconds",
		        left, "until", (json_int_t)(b[i].until_ms / 1000), "last",
		        (json_int_t)(b[i].last_ms / 1000), "offences", (int)b[i].offences, "reason",
		        limiter_reason_name(b[i].reason)));
	}
	return json_pack("{s:o}", "bans", arr);
}

/* On the shared state in Redis ([cluster]): every node applies it. 0, 1
 * (no such ban) or 2 (Redis unreachable: try the others). */
static int
ban_via_cluster(const struct conf *c, const struct ban_opts *o, const char *canon, unsigned seconds,
    struct ban_source *src)
{
	char err[512];
	int64_t now = limiter_now_ms();
	struct cluster_sync *cs = cluster_sync_open(c, err, sizeof(err));
	struct limiter_ban b, *list;
	json_t *doc;
	size_t n;
	int rc = 1;

	if (cs == NULL) {
		snprintf(src->why, sizeof(src->why), "%.*s", (int)sizeof(src->why) - 1, err);
		return 2;
	}
	src->cluster = true;
	snprintf(src->where, sizeof(src->where), "%s", c->cluster_redis);
	if (strcmp(o->action, "list") == 0) {
		list = cluster_sync_ban_list(cs, now, o->all, &n, err, sizeof(err));
		if (list != NULL) {
			doc = ban_cluster_list_json(list, n, now);
			ban_print_list(doc, src, o->json);
			json_decref(doc);
			rc = 0;
		}
		free(list);
	} else if (strcmp(o->action, "add") == 0) {
		if (cluster_sync_ban_add(cs, canon, seconds, now, &b, err, sizeof(err)) == 0)
			rc = 0;
	} else {
		rc = cluster_sync_ban_del(cs, canon, err, sizeof(err));
		rc = rc == 1 ? 0 : rc == 0 ? 1 : -1;
		if (rc == 1)
			snprintf(err, sizeof(err), "%s is not banned in the cluster", canon);
	}
	cluster_sync_close(cs);
	if (rc == -1 || (rc == 1 && strcmp(o->action, "del") != 0)) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 1;
	}
	if (strcmp(o->action, "list") == 0)
		return rc;
	if (o->json) {
		doc = rc == 1 ? json_pack("{s:s, s:s}", "address", canon, "error", "no such ban")
		    : strcmp(o->action, "add") == 0
		    ? json_pack("{s:s, s:i, s:I, s:s}", "address", canon, "seconds", (int)seconds,
		          "until", (json_int_t)(b.until_ms / 1000), "result", "banned")
		    : json_pack("{s:s, s:s}", "address", canon, "result", "deleted");
		ban_add_source(doc, src);
		ban_print_json(doc);
	} else if (rc == 1) {
		fprintf(stderr, "smtpgate: %s\n", err);
	} else {
		ban_print_source(src);
		if (strcmp(o->action, "add") == 0)
			printf("banned %s for %u s on every node\n", canon, seconds);
		else
			printf("lifted the ban of %s on every node\n", canon);
	}
	return rc;
}

/* On the state file. 0, 1 (no such ban) or 2 (unusable file). */
static int
ban_via_file(const struct conf *c, const struct ban_opts *o, const struct limiter_addr *a,
    unsigned prefix, const char *canon, unsigned seconds, struct ban_source *src)
{
	struct limiter_sizes small = {
	    LIMITER_SHARDS * 8, LIMITER_SHARDS * 8, LIMITER_SHARDS * 8, LIMITER_SHARDS * 8, 0};
	struct limiter *l = limiter_new(&small);
	char *path = ban_routes_state_path(c), err[1024];
	int64_t now = limiter_now_ms();
	json_t *doc;
	int rc = 2;

	src->server = false;
	snprintf(src->where, sizeof(src->where), "%s", path);
	if (limiter_bans_load(l, path, now, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpgate: %s\n", err);
		goto out;
	}
	if (strcmp(o->action, "list") == 0) {
		char *s = limiter_bans_json(l, now, o->all);

		doc = json_loads(s, 0, NULL);
		free(s);
		ban_print_list(doc, src, o->json);
		json_decref(doc);
		rc = 0;
		goto out;
	}
	if (strcmp(o->action, "add") == 0) {
		if (limiter_ban_add(l, a, prefix, seconds, LIMITER_REASON_MANUAL, now) == -1) {
			fprintf(stderr, "smtpgate: the ban table is full\n");
			goto out;
		}
	} else if (limiter_ban_del(l, a, prefix) == -1) {
		if (o->json) {
			doc = json_pack("{s:s, s:s}", "address", canon, "error", "no such ban");
			ban_add_source(doc, src);
			ban_print_json(doc);
		} else {
			fprintf(stderr, "smtpgate: %s is not banned (%s)\n", canon, path);
		}
		rc = 1;
		goto out;
	}
	if (mkdir(c->spool, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "smtpgate: %s: %s\n", c->spool, strerror(errno));
		goto out;
	}
	if (limiter_bans_save(l, path, now) == -1) {
		fprintf(stderr, "smtpgate: cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (o->json) {
		doc = strcmp(o->action, "add") == 0
		    ? json_pack("{s:s, s:i, s:I, s:s}", "address", canon, "seconds", (int)seconds,
		          "until", (json_int_t)(now / 1000 + seconds), "result", "banned")
		    : json_pack("{s:s, s:s}", "address", canon, "result", "deleted");
		ban_add_source(doc, src);
		ban_print_json(doc);
	} else {
		ban_print_source(src);
		if (strcmp(o->action, "add") == 0)
			printf("banned %s for %u s\n", canon, seconds);
		else
			printf("lifted the ban of %s\n", canon);
		printf("note: a server running without [admin] sees this at its next start\n");
	}
	rc = 0;
out:
	free(path);
	limiter_free(l);
	return rc;
}

int
ban_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"seconds", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"all", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ban_opts o;
	struct ban_source src;
	struct limiter_addr a;
	char err[1024], canon[LIMITER_ADDR_STRLEN] = "";
	unsigned prefix = 0, seconds = 0;
	struct conf *c;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	memset(&src, 0, sizeof(src));
	memset(&a, 0, sizeof(a));
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.conf_path = optarg;
			break;
		case 's':
			o.seconds = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'a':
			o.all = true;
			break;
		case 'h':
			ban_usage(stdout);
			return 0;
		default:
			ban_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		o.action = argv[optind++];
	if (optind < argc)
		o.addr = argv[optind++];
	if (o.conf_path == NULL || o.action == NULL || optind != argc ||
	    (strcmp(o.action, "list") == 0 && o.addr != NULL) ||
	    ((strcmp(o.action, "add") == 0 || strcmp(o.action, "del") == 0) && o.addr == NULL) ||
	    (strcmp(o.action, "list") != 0 && strcmp(o.action, "add") != 0 &&
	        strcmp(o.action, "del") != 0)) {
		ban_usage(stderr);
		return 2;
	}
	if (o.addr != NULL) {
		if (limiter_addr_parse(o.addr, &a, &prefix) == -1) {
			fprintf(stderr, "smtpgate: %s: not an address or ADDRESS/PREFIX\n", o.addr);
			return 2;
		}
		limiter_addr_format(&a, prefix, canon, sizeof(canon));
	}
	if (o.seconds != NULL &&
	    (conf_parse_duration(o.seconds, &seconds) == -1 || seconds == 0 ||
	        seconds > BAN_ROUTES_MAX_SECONDS)) {
		fprintf(stderr, "smtpgate: --seconds %s: a duration from 1s to 365d\n", o.seconds);
		return 2;
	}
	c = conf_load(o.conf_path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 2;
	}
	if (seconds == 0)
		seconds = c->ban_time > 0 ? c->ban_time : 600;
	rc = 2;
	/* with [cluster] the shared state first: every node applies it */
	if (c->cluster)
		rc = ban_via_cluster(c, &o, canon, seconds, &src);
	if (rc == 2 && c->admin) {
		rc = ban_via_admin(c, &o, canon, seconds, &src);
		if (rc == -1)
			rc = 1;
	} else if (rc == 2 && src.why[0] == '\0') {
		snprintf(src.why, sizeof(src.why), "no [admin] section");
	}
	if (rc == 2)
		rc = ban_via_file(c, &o, &a, prefix, canon, seconds, &src);
	conf_free(c);
	return rc;
}

/*
 * ban_routes: the [admin] /bans routes, run on the admin thread; they act on
 * the limiter that the loops share (its own locks), and log what they do.
 */
#include "server/ban_routes.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/admin.h"
#include "net/listener.h"
#include "policy/limiter.h"
#include "queue/spool.h"
#include "server/server.h"

char *
ban_routes_state_path(const struct conf *c)
{
	return spool_path(c->spool, SPOOL_BANS);
}

/* --- the admin routes (on the admin thread) ---------------------------- */

static int
ban_routes_reply(struct buf *out, const char **content_type_r, int status, json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);

	json_decref(doc);
	if (s == NULL)
		abort();
	*content_type_r = "application/json";
	if (buf_append_str(out, s) == -1 || buf_append_str(out, "\n") == -1)
		status = 500;
	free(s);
	return status;
}

static int
ban_routes_error(struct buf *out, const char **content_type_r, int status, const char *msg)
{
	return ban_routes_reply(out, content_type_r, status, json_pack("{s:s}", "error", msg));
}

static int
ban_routes_add(struct server *srv, const char *body, size_t bodylen, struct buf *out,
    const char **content_type_r)
{
	struct server_snap *snap;
	const char *addr = NULL;
	json_int_t seconds = 0;
	struct limiter_addr a;
	char canon[LIMITER_ADDR_STRLEN];
	unsigned prefix;
	json_error_t je;
	json_t *doc;
	int64_t now = limiter_now_ms();

	doc = body != NULL ? json_loadb(body, bodylen, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (doc == NULL ||
	    json_unpack(doc, "{s:s, s?I}", "address", &addr, "seconds", &seconds) == -1) {
		json_decref(doc);
		return ban_routes_error(out, content_type_r, 400,
		    "expected {\"address\": \"ADDR[/PREFIX]\", \"seconds\": N}");
	}
	if (limiter_addr_parse(addr, &a, &prefix) == -1) {
		json_decref(doc);
		return ban_routes_error(
		    out, content_type_r, 400, "not an address or ADDRESS/PREFIX");
	}
	json_decref(doc);
	if (seconds == 0) {
		snap = server_snap_get(srv);
		seconds = snap->conf->ban_time;
		server_snap_put(snap);
	}
	if (seconds < 1 || seconds > BAN_ROUTES_MAX_SECONDS)
		return ban_routes_error(out, content_type_r, 400, "seconds: 1 to one year");
	if (limiter_ban_add(
	        srv->limiter, &a, prefix, (unsigned)seconds, LIMITER_REASON_MANUAL, now) == -1)
		return ban_routes_error(out, content_type_r, 500, "the ban table is full");
	limiter_addr_format(&a, prefix, canon, sizeof(canon));
	log_event(LOG_WARNING, "ban", 0, "{s:s, s:I, s:s, s:s}", "address", canon, "seconds",
	    seconds, "reason", "manual", "via", "admin");
	return ban_routes_reply(out, content_type_r, 200,
	    json_pack("{s:s, s:I, s:I, s:s}", "address", canon, "seconds", seconds, "until",
	        (json_int_t)(now / 1000 + seconds), "result", "banned"));
}

int
ban_routes_handler(void *arg, const char *method, const char *path, const char *query,
    const char *body, size_t bodylen, struct buf *out, const char **content_type_r)
{
	struct server *srv = arg;
	struct limiter_addr a;
	char canon[LIMITER_ADDR_STRLEN], v[8];
	unsigned prefix;

	if (srv->limiter == NULL)
		return ban_routes_error(out, content_type_r, 503, "no limiter");
	if (strcmp(path, "/bans") == 0) {
		if (strcmp(method, "GET") == 0) {
			bool all =
			    admin_query_get(query, "all", v, sizeof(v)) == 0 && strcmp(v, "1") == 0;
			char *s = limiter_bans_json(srv->limiter, limiter_now_ms(), all);
			int status = 200;

			*content_type_r = "application/json";
			if (buf_append_str(out, s) == -1 || buf_append_str(out, "\n") == -1)
				status = 500;
			free(s);
			return status;
		}
		if (strcmp(method, "POST") == 0)
			return ban_routes_add(srv, body, bodylen, out, content_type_r);
		return ban_routes_error(out, content_type_r, 405, "GET or POST /bans");
	}
	if (strncmp(path, "/bans/", 6) != 0)
		return ban_routes_error(out, content_type_r, 404, "no such resource");
	if (strcmp(method, "DELETE") != 0)
		return ban_routes_error(out, content_type_r, 405, "DELETE /bans/ADDRESS");
	if (limiter_addr_parse(path + 6, &a, &prefix) == -1)
		return ban_routes_error(
		    out, content_type_r, 400, "not an address or ADDRESS/PREFIX");
	limiter_addr_format(&a, prefix, canon, sizeof(canon));
	if (limiter_ban_del(srv->limiter, &a, prefix) == -1)
		return ban_routes_error(out, content_type_r, 404, "no such ban");
	log_event(LOG_NOTICE, "unban", 0, "{s:s, s:s}", "address", canon, "via", "admin");
	return ban_routes_reply(out, content_type_r, 200,
	    json_pack("{s:s, s:s}", "address", canon, "result", "deleted"));
}

/*
 * cluster_sync: see cluster_sync.h.
 */
#include "cluster/cluster_sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "cluster/cluster_lua.h"
#include "cluster/cluster_msg.h"
#include "conf/conf.h"
#include "lib/xalloc.h"

struct cluster_sync {
	redisContext *rc;
	char bans[CLUSTER_MSG_KEY_MAX], chan[CLUSTER_MSG_KEY_MAX];
	char prefix[CLUSTER_MSG_KEY_MAX];
};

/* The reply of argv, or NULL with err (an error reply too). */
static redisReply *
cluster_sync_cmd(struct cluster_sync *cs, int argc, const char **argv, char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(cs->rc, argc, argv, NULL);

	if (r == NULL) {
		snprintf(
		    err, errlen, "redis: %s", cs->rc->errstr[0] ? cs->rc->errstr : "no answer");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "redis: %s", r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

struct cluster_sync *
cluster_sync_open(const struct conf *c, char *err, size_t errlen)
{
	enum cluster_sync_fail why;

	return cluster_sync_connect(c, &why, err, errlen);
}

struct cluster_sync *
cluster_sync_connect(const struct conf *c, enum cluster_sync_fail *why, char *err, size_t errlen)
{
	struct timeval tv = {
	    CLUSTER_SYNC_TIMEOUT_MS / 1000, (CLUSTER_SYNC_TIMEOUT_MS % 1000) * 1000};
	struct cluster_sync *cs = xcalloc(1, sizeof(*cs));
	const char *prefix = c->cluster_prefix != NULL ? c->cluster_prefix : "smtpgate:";
	redisReply *r;
	char db[16];

	*why = CLUSTER_SYNC_FAIL_OTHER;
	if (cluster_msg_key(cs->prefix, sizeof(cs->prefix), prefix, "", NULL) == -1 ||
	    cluster_msg_key(cs->bans, sizeof(cs->bans), prefix, "bans", NULL) == -1 ||
	    cluster_msg_key(cs->chan, sizeof(cs->chan), prefix, "events", NULL) == -1) {
		snprintf(err, errlen, "[cluster] key_prefix \"%s\" is too long", prefix);
		free(cs);
		return NULL;
	}
	cs->rc = c->cluster_url.path[0] != '\0'
	    ? redisConnectUnixWithTimeout(c->cluster_url.path, tv)
	    : redisConnectWithTimeout(c->cluster_url.host, (int)c->cluster_url.port, tv);
	if (cs->rc == NULL || cs->rc->err) {
		snprintf(err, errlen, "[cluster] redis %s: %s", c->cluster_redis,
		    cs->rc != NULL ? cs->rc->errstr : "out of memory");
		*why = CLUSTER_SYNC_FAIL_CONNECT;
		cluster_sync_close(cs);
		return NULL;
	}
	(void)redisSetTimeout(cs->rc, tv);
	if (c->cluster_password != NULL) {
		const char *argv[2] = {"AUTH", c->cluster_password};

		if ((r = cluster_sync_cmd(cs, 2, argv, err, errlen)) == NULL) {
			*why = cs->rc->err ? CLUSTER_SYNC_FAIL_CONNECT : CLUSTER_SYNC_FAIL_AUTH;
			cluster_sync_close(cs);
			return NULL;
		}
		freeReplyObject(r);
	}
	/* a server that wants a password answers NOAUTH to anything else */
	{
		const char *argv[1] = {"PING"};

		if ((r = cluster_sync_cmd(cs, 1, argv, err, errlen)) == NULL) {
			*why = cs->rc->err                  ? CLUSTER_SYNC_FAIL_CONNECT
			    : strstr(err, "NOAUTH") != NULL ? CLUSTER_SYNC_FAIL_AUTH
			                                    : CLUSTER_SYNC_FAIL_OTHER;
			cluster_sync_close(cs);
			return NULL;
		}
		freeReplyObject(r);
	}
	snprintf(db, sizeof(db), "%u", c->cluster_url.db);
	if (c->cluster_url.db != 0) {
		const char *argv[2] = {"SELECT", db};

		if ((r = cluster_sync_cmd(cs, 2, argv, err, errlen)) == NULL) {
			*why = cs->rc->err ? CLUSTER_SYNC_FAIL_CONNECT : CLUSTER_SYNC_FAIL_OTHER;
			cluster_sync_close(cs);
			return NULL;
		}
		freeReplyObject(r);
	}
	return cs;
}

void
cluster_sync_close(struct cluster_sync *cs)
{
	if (cs == NULL)
		return;
	if (cs->rc != NULL)
		redisFree(cs->rc);
	free(cs);
}

int
cluster_sync_ban_add(struct cluster_sync *cs, const char *address, unsigned seconds, int64_t now,
    struct limiter_ban *b, char *err, size_t errlen)
{
	char snow[24], ssec[16], smem[24];
	const char *argv[] = {
	    "EVAL", cluster_lua_ban_add, "1", cs->bans, address, snow, ssec, smem, cs->chan};
	redisReply *r;
	int rc = -1;

	snprintf(snow, sizeof(snow), "%" PRId64, now);
	snprintf(ssec, sizeof(ssec), "%u", seconds);
	snprintf(smem, sizeof(smem), "%lld", (long long)LIMITER_OFFENCE_MEMORY_MS);
	r = cluster_sync_cmd(cs, (int)(sizeof(argv) / sizeof(argv[0])), argv, err, errlen);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING && cluster_msg_ban_parse(address, r->str, b) == 0)
		rc = 0;
	else
		snprintf(err, errlen, "redis: an unexpected answer to the ban");
	freeReplyObject(r);
	return rc;
}

int
cluster_sync_ban_del(struct cluster_sync *cs, const char *address, char *err, size_t errlen)
{
	const char *argv[] = {"EVAL", cluster_lua_unban, "1", cs->bans, address, cs->chan};
	redisReply *r = cluster_sync_cmd(cs, 6, argv, err, errlen);
	int rc;

	if (r == NULL)
		return -1;
	rc = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? 1 : 0;
	freeReplyObject(r);
	return rc;
}

static int
cluster_sync_cmp(const void *x, const void *y)
{
	return strcmp(
	    ((const struct limiter_ban *)x)->address, ((const struct limiter_ban *)y)->address);
}

struct limiter_ban *
cluster_sync_ban_list(
    struct cluster_sync *cs, int64_t now, bool all, size_t *n_r, char *err, size_t errlen)
{
	const char *argv[2] = {"HGETALL", cs->bans};
	redisReply *r = cluster_sync_cmd(cs, 2, argv, err, errlen);
	struct limiter_ban *out;
	size_t n = 0;

	*n_r = 0;
	if (r == NULL)
		return NULL;
	out = xcalloc(r->elements / 2 + 1, sizeof(*out));
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
		redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    cluster_msg_ban_parse(k->str, v->str, &out[n]) == -1)
			continue;
		if (all || out[n].until_ms > now)
			n++;
	}
	freeReplyObject(r);
	qsort(out, n, sizeof(*out), cluster_sync_cmp);
	*n_r = n;
	return out;
}

int
cluster_sync_quota_unlock(struct cluster_sync *cs, const char *user, char *err, size_t errlen)
{
	char hex[CLUSTER_MSG_HEX_MAX], holds[CLUSTER_MSG_KEY_MAX], key[CLUSTER_MSG_KEY_MAX],
	    rkey[CLUSTER_MSG_KEY_MAX];
	const char *argv[] = {
	    "EVAL", cluster_lua_quota_unlock, "3", holds, key, rkey, hex, cs->chan};
	redisReply *r;
	int rc = -1;

	cluster_msg_hex(user, strlen(user), hex);
	if (cluster_msg_key(holds, sizeof(holds), cs->prefix, "holds", NULL) == -1 ||
	    cluster_msg_key(key, sizeof(key), cs->prefix, "quota:", hex) == -1 ||
	    cluster_msg_key(rkey, sizeof(rkey), cs->prefix, "rcpt:", hex) == -1) {
		snprintf(err, errlen, "[cluster] key_prefix is too long");
		return -1;
	}
	r = cluster_sync_cmd(cs, (int)(sizeof(argv) / sizeof(argv[0])), argv, err, errlen);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_INTEGER)
		rc = r->integer > 0 ? 1 : 0;
	else
		snprintf(err, errlen, "redis: an unexpected answer to the unlock");
	freeReplyObject(r);
	return rc;
}

/* A key found by the SCAN of `*node:*`: counted under this prefix, or
 * under another when its value is a node's registration. */
static void
cluster_sync_audit_key(struct cluster_sync *cs, const char *key, size_t ourlen,
    struct cluster_sync_audit *a, unsigned *gets)
{
	const char *at = strstr(key, "node:");
	struct cluster_msg_node n;
	const char *argv[2] = {"GET", key};
	redisReply *r;
	size_t plen, i;

	if (strncmp(key, cs->prefix, ourlen) == 0 && strncmp(key + ourlen, "node:", 5) == 0) {
		a->ours++;
		return;
	}
	if (at == NULL || (*gets)++ >= 64)
		return;
	/* a key of something else (a hash, another program's string) is not one */
	r = redisCommandArgv(cs->rc, 2, argv, NULL);
	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_STRING && cluster_msg_node_parse(r->str, &n) == 0) {
		a->others++;
		plen = (size_t)(at - key);
		for (i = 0; i < a->nprefixes; i++) {
			if (strlen(a->prefixes[i]) == plen &&
			    strncmp(a->prefixes[i], key, plen) == 0)
				break;
		}
		if (i == a->nprefixes && i < CLUSTER_SYNC_AUDIT_PREFIXES &&
		    plen < sizeof(a->prefixes[0])) {
			memcpy(a->prefixes[i], key, plen);
			a->prefixes[i][plen] = '\0';
			a->nprefixes++;
		}
	}
	freeReplyObject(r);
}

/* Every registration in this database, ours and under other prefixes. */
static int
cluster_sync_audit_scan(
    struct cluster_sync *cs, struct cluster_sync_audit *a, char *err, size_t errlen)
{
	char cursor[32] = "0";
	size_t ourlen = strlen(cs->prefix);
	unsigned gets = 0;

	for (unsigned n = 0;; n++) {
		const char *argv[6] = {"SCAN", cursor, "MATCH", "*node:*", "COUNT", "1000"};
		redisReply *r, *keys;

		if (n == CLUSTER_SYNC_AUDIT_SCANS) {
			a->scan_cut = true;
			return 0;
		}
		if ((r = cluster_sync_cmd(cs, 6, argv, err, errlen)) == NULL) {
			if (cs->rc->err)
				return -1;
			/* refused (an ACL without SCAN): that check alone is skipped */
			snprintf(a->scan_error, sizeof(a->scan_error), "%s", err);
			return 0;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			snprintf(err, errlen, "redis: an unexpected answer to SCAN");
			freeReplyObject(r);
			return -1;
		}
		keys = r->element[1];
		for (size_t i = 0; i < keys->elements; i++) {
			if (keys->element[i]->type == REDIS_REPLY_STRING)
				cluster_sync_audit_key(cs, keys->element[i]->str, ourlen, a, &gets);
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		freeReplyObject(r);
		if (strcmp(cursor, "0") == 0)
			return 0;
	}
}

int
cluster_sync_audit(struct cluster_sync *cs, const char *node, struct cluster_sync_audit *a,
    char *err, size_t errlen)
{
	char key[CLUSTER_MSG_KEY_MAX];
	const char *argv[3] = {NULL, key, node};
	redisReply *r;

	memset(a, 0, sizeof(*a));
	if (cluster_msg_key(key, sizeof(key), cs->prefix, "clash", NULL) == -1)
		goto too_long;
	argv[0] = "SISMEMBER";
	if ((r = cluster_sync_cmd(cs, 3, argv, err, errlen)) == NULL)
		return -1;
	a->clash = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	if (cluster_msg_key(key, sizeof(key), cs->prefix, "node:", node) == -1)
		goto too_long;
	argv[0] = "GET";
	if ((r = cluster_sync_cmd(cs, 2, argv, err, errlen)) == NULL)
		return -1;
	a->registered =
	    r->type == REDIS_REPLY_STRING && cluster_msg_node_parse(r->str, &a->holder) == 0;
	freeReplyObject(r);
	if (cluster_msg_key(key, sizeof(key), cs->prefix, "proxy:", node) == -1)
		goto too_long;
	argv[0] = "HGETALL";
	if ((r = cluster_sync_cmd(cs, 2, argv, err, errlen)) == NULL)
		return -1;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements &&
	     a->nrefused < CLUSTER_SYNC_AUDIT_REFUSED;
	     i += 2) {
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING &&
		    cluster_msg_refused_parse(
		        r->element[i]->str, r->element[i + 1]->str, &a->refused[a->nrefused]) == 0)
			a->nrefused++;
	}
	freeReplyObject(r);
	return cluster_sync_audit_scan(cs, a, err, errlen);
too_long:
	snprintf(err, errlen, "[cluster] key_prefix or node is too long");
	return -1;
}

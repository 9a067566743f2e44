/*
 * cluster_state: the commands of the cluster thread (cluster_priv.h): the
 * script calls, the messages of the channel and the resync into the local
 * limiter, the node registry, and the limiter's hooks, which copy what they
 * need into a job for the cluster thread.
 */
#include "cluster/cluster_priv.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_lua.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/loop.h"
#include "policy/limiter.h"

/* --- commands ---------------------------------------------------------------- */

/* Every command goes through here: counted, so that one left unanswered
 * for CLUSTER_TIMEOUT_MS marks the cluster down. */
struct cluster_cmd {
	struct cluster *cl;
	void (*done)(struct cluster *cl, redisReply *r, void *arg);
	void *arg;
};

static void
cluster_cmd_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct cluster_cmd *cmd = priv;
	struct cluster *cl = cmd->cl;
	redisReply *r = reply;

	(void)ac;
	if (cl->outstanding > 0 && --cl->outstanding == 0)
		cl->oldest_ms = 0;
	else if (cl->outstanding > 0)
		cl->oldest_ms = cluster_mono_ms(); /* answers come in order */
	if (r != NULL && r->type == REDIS_REPLY_ERROR && !cl->broken) {
		cl->broken = true;
		snprintf(cl->why, sizeof(cl->why), "redis: %.*s",
		    (int)(r->len < 120 ? r->len : 120), r->str);
	}
	if (cmd->done != NULL)
		cmd->done(cl, r, cmd->arg);
	free(cmd);
}

int
cluster_send(struct cluster *cl, int argc, const char **argv, const size_t *lens,
    void (*done)(struct cluster *, redisReply *, void *), void *arg)
{
	struct cluster_cmd *cmd;

	if (cl->ac == NULL)
		return -1;
	cmd = xcalloc(1, sizeof(*cmd));
	cmd->cl = cl;
	cmd->done = done;
	cmd->arg = arg;
	if (redisAsyncCommandArgv(cl->ac, cluster_cmd_cb, cmd, argc, argv, lens) != REDIS_OK) {
		free(cmd);
		return -1;
	}
	if (cl->outstanding++ == 0)
		cl->oldest_ms = cluster_mono_ms();
	return 0;
}

/* A script (cluster_lua.h) with its keys, then its arguments. */
static int
cluster_eval(struct cluster *cl, const char *script, int nkeys, int nargs, const char **args,
    void (*done)(struct cluster *, redisReply *, void *), void *arg)
{
	const char *argv[24];
	char nk[8];
	int argc = 0;

	if (3 + nargs > (int)(sizeof(argv) / sizeof(argv[0])))
		return -1;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = nk;
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	return cluster_send(cl, argc, argv, NULL, done, arg);
}

/* --- the shared state into the local limiter ---------------------------------- */

void
cluster_apply(struct cluster *cl, const struct cluster_msg *m)
{
	int64_t now = limiter_now_ms();

	switch (m->type) {
	case CLUSTER_MSG_BAN:
		if (limiter_ban_set(cl->lim, &m->ban) == -1)
			log_event(LOG_ERR, "cluster", 0, "{s:s, s:s}", "error",
			    "no room for a shared ban", "address", m->ban.address);
		break;
	case CLUSTER_MSG_UNBAN:
		limiter_ban_forget(cl->lim, m->ban.address);
		break;
	case CLUSTER_MSG_GOOD:
		limiter_good_set(cl->lim, m->account, m->account_len, &m->client, m->stamp);
		break;
	case CLUSTER_MSG_ACCT:
		limiter_account_raise(cl->lim, m->account, m->account_len,
		    cluster_msg_decay(m->fails, m->stamp, now, LIMITER_FAIL_HALFLIFE_MS), now);
		break;
	case CLUSTER_MSG_HOLD:
	case CLUSTER_MSG_UNLOCK:
		cluster_quota_apply(cl, m);
		break;
	}
}

/* The resync: every ban and known-good pair of the shared state. Ended bans
 * and stale pairs are pruned here (Redis 7.0 has no expiry per hash field). */
static void
cluster_resync_bans(struct cluster *cl, redisReply *r, void *arg)
{
	int64_t now = limiter_now_ms();

	(void)arg;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		redisReply *k = r->element[i], *v = r->element[i + 1];
		struct limiter_ban b;

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    cluster_msg_ban_parse(k->str, v->str, &b) == -1)
			continue;
		if (now - b.last_ms > LIMITER_OFFENCE_MEMORY_MS && b.until_ms <= now) {
			const char *argv[3] = {"HDEL", cl->bans, k->str};

			(void)cluster_send(cl, 3, argv, NULL, NULL, NULL);
			continue;
		}
		if (limiter_ban_set(cl->lim, &b) == -1)
			log_event(LOG_ERR, "cluster", 0, "{s:s, s:s}", "error",
			    "a shared ban that does not parse", "address", b.address);
	}
}

static void
cluster_resync_good(struct cluster *cl, redisReply *r, void *arg)
{
	int64_t now = limiter_now_ms();

	(void)arg;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		redisReply *k = r->element[i], *v = r->element[i + 1];
		char msg[1024];
		struct cluster_msg m;
		int n;

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		n = snprintf(msg, sizeof(msg), "good %s %s", k->str, v->str);
		if (n < 0 || (size_t)n >= sizeof(msg) ||
		    cluster_msg_parse(msg, (size_t)n, &m) == -1)
			continue;
		if (now - m.stamp > LIMITER_GOOD_TTL_MS) {
			const char *argv[3] = {"HDEL", cl->good, k->str};

			(void)cluster_send(cl, 3, argv, NULL, NULL, NULL);
			continue;
		}
		cluster_apply(cl, &m);
	}
}

void
cluster_resync(struct cluster *cl)
{
	const char *b[2] = {"HGETALL", cl->bans}, *g[2] = {"HGETALL", cl->good};

	(void)cluster_send(cl, 2, b, NULL, cluster_resync_bans, NULL);
	(void)cluster_send(cl, 2, g, NULL, cluster_resync_good, NULL);
	cluster_quota_resync(cl);
	cl->next_resync_ms = cluster_mono_ms() + CLUSTER_RESYNC_MS;
}

/* Another live instance held this node's name: two nodes share it (their
 * known-good pairs and the audit cannot tell them apart). */
static void
cluster_register_done(struct cluster *cl, redisReply *r, void *arg)
{
	const char *mine = strchr(cl->record, ' '), *theirs;

	(void)arg;
	if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 ||
	    strcmp(r->str, cl->record) == 0)
		return;
	/* the same host and configuration: this node's previous instance */
	theirs = strchr(r->str, ' ');
	if (mine != NULL && theirs != NULL && strcmp(mine, theirs) == 0)
		return;
	log_event(LOG_ERR, "cluster", 0, "{s:s, s:s, s:s}", "error", "node_name_clash", "node",
	    cl->node, "detail",
	    "another live node registered the same [cluster] node name: give each its own");
}

void
cluster_register(struct cluster *cl)
{
	char key[CLUSTER_MSG_KEY_MAX], clash[CLUSTER_MSG_KEY_MAX], ttl[16];
	const char *args[5] = {key, clash, cl->record, ttl, cl->node};

	if (cluster_msg_key(key, sizeof(key), cl->prefix, "node:", cl->node) == -1 ||
	    cluster_msg_key(clash, sizeof(clash), cl->prefix, "clash", NULL) == -1)
		return;
	snprintf(ttl, sizeof(ttl), "%d", CLUSTER_NODE_TTL_S);
	(void)cluster_eval(cl, cluster_lua_node, 2, 5, args, cluster_register_done, NULL);
	cl->next_node_ms = cluster_mono_ms() + CLUSTER_NODE_TTL_S * 1000 / 3;
}

/* --- the limiter's hooks --------------------------------------------------------- */

/* What a hook posts: the arguments of one script call, copied. */
struct cluster_job {
	struct cluster *cl;
	const char *script;
	int nkeys, nargs;
	char args[16][CLUSTER_MSG_KEY_MAX / 4];
	char keys[4][CLUSTER_MSG_KEY_MAX];
	bool account; /* an account count comes back: raise the local one */
	char account_name[CLUSTER_MSG_ACCOUNT_MAX + 1];
	size_t account_len;
};

static void
cluster_fail_done(struct cluster *cl, redisReply *r, void *arg)
{
	struct cluster_job *j = arg;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[2]->type == REDIS_REPLY_STRING && j->account_len > 0) {
		double f = strtod(r->element[2]->str, NULL);

		limiter_account_raise(
		    cl->lim, j->account_name, j->account_len, f, limiter_now_ms());
	}
	free(j);
}

static void
cluster_job_run(void *arg)
{
	struct cluster_job *j = arg;
	const char *argv[20];
	int n = 0;

	for (int i = 0; i < j->nkeys; i++)
		argv[n++] = j->keys[i];
	for (int i = 0; i < j->nargs; i++)
		argv[n++] = j->args[i];
	/* down: the local state has it already (never waited for) */
	if (!cluster_is_up(j->cl) ||
	    cluster_eval(j->cl, j->script, j->nkeys, n, argv, j->account ? cluster_fail_done : NULL,
	        j->account ? j : NULL) == -1 ||
	    !j->account)
		free(j);
}

static struct cluster_job *
cluster_job_new(struct cluster *cl, const char *script)
{
	struct cluster_job *j = xcalloc(1, sizeof(*j));

	j->cl = cl;
	j->script = script;
	return j;
}

static void cluster_job_arg(struct cluster_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cluster_job_arg(struct cluster_job *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->args[j->nargs++], sizeof(j->args[0]), fmt, ap);
	va_end(ap);
}

/* The network of ip ("192.0.2.7") of prefix bits in its own family, as
 * the limiter names it ("192.0.2.0/24"). */
static void
cluster_net_of(const char *ip, unsigned prefix, char out[LIMITER_ADDR_STRLEN])
{
	char tmp[LIMITER_ADDR_STRLEN + 8];
	struct limiter_addr m;
	unsigned p;

	snprintf(tmp, sizeof(tmp), "%s/%u", ip, prefix);
	if (limiter_addr_parse(tmp, &m, &p) == -1)
		snprintf(out, LIMITER_ADDR_STRLEN, "%s", ip);
	else
		limiter_addr_format(&m, p, out, LIMITER_ADDR_STRLEN);
}

static void
cluster_hook_failed(void *arg, const struct conf *c, const char *account, size_t len,
    const struct limiter_addr *a, bool allowed, int64_t now)
{
	struct cluster *cl = arg;
	struct cluster_job *j;
	char ip[LIMITER_ADDR_STRLEN], nets[LIMITER_ADDR_STRLEN], hex[CLUSTER_MSG_HEX_MAX];

	if (!cluster_is_up(cl))
		return;
	j = cluster_job_new(cl, cluster_lua_fail);
	limiter_addr_format(a, 128, ip, sizeof(ip));
	cluster_net_of(ip, limiter_addr_is_v4(a) ? c->net_prefix_v4 : c->net_prefix_v6, nets);
	cluster_msg_hex(account, len, hex);
	j->nkeys = 4;
	/* a key that does not fit (a prefix near its limit): this failure
	 * counts locally only, as when Redis is down */
	if (cluster_msg_key(j->keys[0], sizeof(j->keys[0]), cl->prefix, "fail:ip:", ip) == -1 ||
	    cluster_msg_key(j->keys[1], sizeof(j->keys[1]), cl->prefix, "fail:net:", nets) == -1 ||
	    cluster_msg_key(j->keys[2], sizeof(j->keys[2]), cl->prefix, "fail:acct:", hex) == -1) {
		free(j);
		return;
	}
	snprintf(j->keys[3], sizeof(j->keys[3]), "%s", cl->bans);
	cluster_job_arg(j, "%" PRId64, now);
	cluster_job_arg(j, "%lld", (long long)LIMITER_FAIL_HALFLIFE_MS);
	cluster_job_arg(j, "%u", c->auth_failures_per_ip);
	cluster_job_arg(j, "%u", c->auth_failures_per_net);
	cluster_job_arg(j, "%u", c->auth_failures_per_account);
	cluster_job_arg(j, "%s", ip);
	cluster_job_arg(j, "%s", nets);
	cluster_job_arg(j, "%u", c->ban_time);
	cluster_job_arg(j, "%d", LIMITER_BAN_MAX_S);
	cluster_job_arg(j, "%lld", (long long)LIMITER_OFFENCE_MEMORY_MS);
	cluster_job_arg(j, "%s", cl->chan);
	cluster_job_arg(j, "%s", allowed ? "a" : len == 0 ? "-" : "c");
	cluster_job_arg(j, "%s", hex);
	if (len > 0) {
		j->account = true;
		j->account_len = len > CLUSTER_MSG_ACCOUNT_MAX ? CLUSTER_MSG_ACCOUNT_MAX : len;
		memcpy(j->account_name, account, j->account_len);
	}
	loop_post(cl->loop, cluster_job_run, j);
}

static void
cluster_hook_ok(
    void *arg, const char *account, size_t len, const struct limiter_addr *a, int64_t now)
{
	struct cluster *cl = arg;
	struct cluster_job *j;
	char ip[LIMITER_ADDR_STRLEN], hex[CLUSTER_MSG_HEX_MAX];

	if (!cluster_is_up(cl) || len == 0)
		return;
	j = cluster_job_new(cl, cluster_lua_good);
	limiter_addr_format(a, 128, ip, sizeof(ip));
	cluster_msg_hex(account, len, hex);
	j->nkeys = 1;
	snprintf(j->keys[0], sizeof(j->keys[0]), "%s", cl->good);
	cluster_job_arg(j, "%s %s", hex, ip);
	cluster_job_arg(j, "%" PRId64, now);
	cluster_job_arg(j, "%s", cl->chan);
	loop_post(cl->loop, cluster_job_run, j);
}

/* The operator's ban through the admin API: as this node made it. */
static void
cluster_hook_ban_added(void *arg, const struct limiter_ban *b, int64_t now)
{
	struct cluster *cl = arg;
	struct cluster_job *j;
	char rec[CLUSTER_MSG_BAN_MAX];

	(void)now;
	if (!cluster_is_up(cl))
		return;
	j = cluster_job_new(cl, cluster_lua_ban_put);
	cluster_msg_ban_format(b, rec, sizeof(rec));
	j->nkeys = 1;
	snprintf(j->keys[0], sizeof(j->keys[0]), "%s", cl->bans);
	cluster_job_arg(j, "%s", b->address);
	cluster_job_arg(j, "%s", rec);
	cluster_job_arg(j, "%s", cl->chan);
	loop_post(cl->loop, cluster_job_run, j);
}

static void
cluster_hook_ban_deleted(void *arg, const char *address, int64_t now)
{
	struct cluster *cl = arg;
	struct cluster_job *j;

	(void)now;
	if (!cluster_is_up(cl))
		return;
	j = cluster_job_new(cl, cluster_lua_unban);
	j->nkeys = 1;
	snprintf(j->keys[0], sizeof(j->keys[0]), "%s", cl->bans);
	cluster_job_arg(j, "%s", address);
	cluster_job_arg(j, "%s", cl->chan);
	loop_post(cl->loop, cluster_job_run, j);
}

const struct limiter_hooks cluster_hooks = {
    .auth_failed = cluster_hook_failed,
    .auth_ok = cluster_hook_ok,
    .ban_added = cluster_hook_ban_added,
    .ban_deleted = cluster_hook_ban_deleted,
};

/* FNV-1a of the listener and the address: the slot of the pair. */
static uint64_t
cluster_refused_hash(const char *listener, const char *address)
{
	uint64_t h = 14695981039346656037ULL;

	for (const char *s = listener; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ ' ') * 1099511628211ULL;
	for (const char *s = address; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void
cluster_proxy_refused(struct cluster *cl, const char *listener, const char *address)
{
	uint64_t h = cluster_refused_hash(listener, address);
	struct cluster_refused *slot;
	int64_t now = cluster_mono_ms();
	struct cluster_job *j;
	bool send;

	if (cl == NULL || !cluster_is_up(cl))
		return;
	slot = &cl->refused[h % CLUSTER_REFUSED_SLOTS];
	pthread_mutex_lock(&cl->refused_mu);
	send = slot->hash != h || slot->sent_ms == 0 ||
	    now - slot->sent_ms >= CLUSTER_REFUSED_EVERY_MS;
	if (send) {
		slot->hash = h;
		slot->sent_ms = now;
	}
	pthread_mutex_unlock(&cl->refused_mu);
	if (!send)
		return;
	j = cluster_job_new(cl, cluster_lua_proxy_refused);
	j->nkeys = 1;
	if (cluster_msg_key(j->keys[0], sizeof(j->keys[0]), cl->prefix, "proxy:", cl->node) == -1) {
		free(j);
		return;
	}
	cluster_job_arg(j, "%s %s", listener, address);
	cluster_job_arg(j, "%lld", (long long)time(NULL));
	cluster_job_arg(j, "%d", CLUSTER_REFUSED_TTL_S);
	cluster_job_arg(j, "%d", CLUSTER_REFUSED_MAX);
	loop_post(cl->loop, cluster_job_run, j);
}

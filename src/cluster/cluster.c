/*
 * cluster: see cluster.h; the thread and its two connections (commands, and
 * the subscription to the cluster's channel), up, down and the backoff.
 */
#include "cluster/cluster_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/adapters/libevent.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/loop.h"
#include "policy/limiter.h"

int64_t
cluster_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
cluster_is_up(const struct cluster *cl)
{
	return cl != NULL && __atomic_load_n(&cl->up, __ATOMIC_RELAXED);
}

/* --- up and down ----------------------------------------------------------------- */

static void
cluster_set_up(struct cluster *cl, bool up)
{
	bool was = __atomic_exchange_n(&cl->up, up, __ATOMIC_RELAXED);

	if (was == up)
		return;
	if (up) {
		log_event(LOG_NOTICE, "cluster", 0, "{s:s, s:s, s:s}", "state", "up", "redis",
		    cl->redis, "node", cl->node);
		cl->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
		cl->logged_down = false;
		cluster_register(cl);
		cluster_resync(cl);
		cluster_ticket_refresh(cl);
	} else {
		log_event(LOG_WARNING, "cluster", 0, "{s:s, s:s, s:s, s:s}", "state", "down",
		    "redis", cl->redis, "error", cl->why[0] != '\0' ? cl->why : "connection lost",
		    "fallback", "local state (bans known here stay)");
	}
}

/* Drops both connections (their pending callbacks get NULL replies) and
 * plans the next attempt. */
static void
cluster_down(struct cluster *cl, const char *why)
{
	redisAsyncContext *ac = cl->ac, *sub = cl->sub;

	if (why != NULL && cl->why[0] == '\0')
		snprintf(cl->why, sizeof(cl->why), "%s", why);
	/* attempts that never came up are logged once, not at each retry */
	if (cluster_is_up(cl) || !cl->logged_down) {
		__atomic_store_n(&cl->up, true, __ATOMIC_RELAXED);
		cluster_set_up(cl, false);
		cl->logged_down = true;
	}
	cl->ac = NULL;
	cl->sub = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);
	if (sub != NULL)
		redisAsyncFree(sub);
	cl->outstanding = 0;
	cl->oldest_ms = 0;
	cl->subscribed = cl->pinged = cl->broken = false;
	cl->connect_ms = 0;
	cl->next_try_ms = cluster_mono_ms() + cl->backoff_ms;
	cl->backoff_ms = cl->backoff_ms * 2 > CLUSTER_BACKOFF_MAX_MS ? CLUSTER_BACKOFF_MAX_MS
	                                                             : cl->backoff_ms * 2;
}

static void
cluster_maybe_up(struct cluster *cl)
{
	if (cl->ac != NULL && cl->sub != NULL && cl->subscribed && cl->pinged && !cl->broken) {
		cl->why[0] = '\0';
		cl->connect_ms = 0;
		cluster_set_up(cl, true);
	}
}

/* --- the two connections ------------------------------------------------------------ */

static void
cluster_connect_cb(const redisAsyncContext *ac, int status)
{
	struct cluster *cl = ac->data;

	if (status == REDIS_OK)
		return;
	snprintf(cl->why, sizeof(cl->why), "connect: %s", ac->errstr);
	/* hiredis frees a context whose connect failed */
	if (ac == cl->ac)
		cl->ac = NULL;
	if (ac == cl->sub)
		cl->sub = NULL;
	cl->broken = true;
}

static void
cluster_disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct cluster *cl = ac->data;

	if (status != REDIS_OK && cl->why[0] == '\0')
		snprintf(cl->why, sizeof(cl->why), "%s", ac->errstr);
	if (ac == cl->ac)
		cl->ac = NULL;
	if (ac == cl->sub)
		cl->sub = NULL;
	cl->broken = true;
}

static void
cluster_ping_done(struct cluster *cl, redisReply *r, void *arg)
{
	(void)arg;
	if (r != NULL && r->type != REDIS_REPLY_ERROR) {
		cl->pinged = true;
		cluster_maybe_up(cl);
	}
}

/* The subscription's replies: the confirmation, then the messages. */
static void
cluster_sub_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct cluster *cl = priv;
	redisReply *r = reply, *kind, *body;
	struct cluster_msg m;

	(void)ac;
	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(cl->why, sizeof(cl->why), "subscribe: %.*s",
		    (int)(r->len < 120 ? r->len : 120), r->str);
		cl->broken = true;
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return;
	kind = r->element[0];
	body = r->element[2];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0) {
		cl->subscribed = true;
		cluster_maybe_up(cl);
	} else if (strcmp(kind->str, "message") == 0 && body->type == REDIS_REPLY_STRING &&
	    cluster_msg_parse(body->str, body->len, &m) == 0) {
		cluster_apply(cl, &m);
	}
}

static void
cluster_auth_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct cluster *cl = priv;
	redisReply *r = reply;

	(void)ac;
	if (r != NULL && r->type == REDIS_REPLY_ERROR) {
		snprintf(cl->why, sizeof(cl->why), "AUTH: %.*s", (int)(r->len < 120 ? r->len : 120),
		    r->str);
		cl->broken = true;
	}
}

static redisAsyncContext *
cluster_open(struct cluster *cl)
{
	redisAsyncContext *ac = cl->url.path[0] != '\0'
	    ? redisAsyncConnectUnix(cl->url.path)
	    : redisAsyncConnect(cl->url.host, (int)cl->url.port);

	if (ac == NULL) {
		snprintf(cl->why, sizeof(cl->why), "connect: out of memory");
		return NULL;
	}
	if (ac->err) {
		snprintf(cl->why, sizeof(cl->why), "connect: %s", ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = cl;
	if (redisLibeventAttach(ac, loop_base(cl->loop)) != REDIS_OK) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, cluster_connect_cb);
	redisAsyncSetDisconnectCallback(ac, cluster_disconnect_cb);
	/* the password is an argument, never formatted into text */
	if (cl->password != NULL) {
		const char *argv[2] = {"AUTH", cl->password};

		(void)redisAsyncCommandArgv(ac, cluster_auth_cb, cl, 2, argv, NULL);
	}
	return ac;
}

static void
cluster_connect(struct cluster *cl)
{
	char db[16];
	const char *sel[2] = {"SELECT", db}, *ping[1] = {"PING"};

	cl->why[0] = '\0';
	cl->connect_ms = cluster_mono_ms();
	cl->ac = cluster_open(cl);
	cl->sub = cl->ac != NULL ? cluster_open(cl) : NULL;
	if (cl->ac == NULL || cl->sub == NULL) {
		cluster_down(cl, NULL);
		return;
	}
	snprintf(db, sizeof(db), "%u", cl->url.db);
	if (cl->url.db != 0)
		(void)cluster_send(cl, 2, sel, NULL, NULL, NULL);
	(void)cluster_send(cl, 1, ping, NULL, cluster_ping_done, NULL);
	(void)redisAsyncCommand(cl->sub, cluster_sub_cb, cl, "SUBSCRIBE %s", cl->chan);
}

/* Every CLUSTER_PING_MS: the timeout, the reconnect, pings, resync and the
 * node registry. */
static void
cluster_tick(void *arg)
{
	struct cluster *cl = arg;
	int64_t now = cluster_mono_ms();
	bool up = cluster_is_up(cl);

	if (cl->ac != NULL || cl->sub != NULL || cl->broken) {
		if (cl->broken || cl->ac == NULL || cl->sub == NULL)
			cluster_down(cl, NULL);
		else if (cl->oldest_ms != 0 && now - cl->oldest_ms > CLUSTER_TIMEOUT_MS)
			cluster_down(
			    cl, "no answer within the timeout: Redis is slow or unreachable");
		else if (!up && cl->connect_ms != 0 && now - cl->connect_ms > CLUSTER_TIMEOUT_MS)
			cluster_down(cl, "connect: no answer within the timeout");
	}
	if (cl->ac == NULL && cl->sub == NULL && now >= cl->next_try_ms)
		cluster_connect(cl);
	else if (up && cl->outstanding == 0) {
		const char *ping[1] = {"PING"};

		(void)cluster_send(cl, 1, ping, NULL, NULL, NULL);
		if (now >= cl->next_resync_ms)
			cluster_resync(cl);
		if (now >= cl->next_node_ms)
			cluster_register(cl);
		if (now >= cl->next_ticket_ms)
			cluster_ticket_refresh(cl);
	}
	loop_timer_add(cl->tick, CLUSTER_PING_MS / 2);
}

/* --- the thread ----------------------------------------------------------------------- */

static void *
cluster_main(void *arg)
{
	struct cluster *cl = arg;

	loop_run(cl->loop);
	return NULL;
}

static void
cluster_first(void *arg)
{
	struct cluster *cl = arg;

	cl->tick = loop_timer_new(cl->loop, cluster_tick, cl);
	cluster_connect(cl);
	loop_timer_add(cl->tick, CLUSTER_PING_MS / 2);
}

static void
cluster_stop(void *arg)
{
	struct cluster *cl = arg;

	loop_timer_free(cl->tick);
	cl->tick = NULL;
	cl->stopping = true;
	if (cl->ac != NULL)
		redisAsyncFree(cl->ac);
	if (cl->sub != NULL)
		redisAsyncFree(cl->sub);
	cl->ac = cl->sub = NULL;
	loop_stop(cl->loop);
}

struct cluster *
cluster_new(const struct conf *c, struct limiter *l, char *err, size_t errlen)
{
	struct cluster *cl = xcalloc(1, sizeof(*cl));
	unsigned char rnd[8];
	char host[256], *real;

	pthread_mutex_init(&cl->refused_mu, NULL);
	cl->lim = l;
	cl->url = c->cluster_url;
	cl->redis = xstrdup(c->cluster_redis);
	cl->password = c->cluster_password != NULL ? xstrdup(c->cluster_password) : NULL;
	cl->prefix = xstrdup(c->cluster_prefix != NULL ? c->cluster_prefix : "smtpgate:");
	cl->node = xstrdup(c->cluster_node != NULL ? c->cluster_node : "node");
	if (cluster_msg_key(cl->chan, sizeof(cl->chan), cl->prefix, "events", NULL) == -1 ||
	    cluster_msg_key(cl->bans, sizeof(cl->bans), cl->prefix, "bans", NULL) == -1 ||
	    cluster_msg_key(cl->good, sizeof(cl->good), cl->prefix, "good", NULL) == -1 ||
	    cluster_msg_key(cl->holds, sizeof(cl->holds), cl->prefix, "holds", NULL) == -1) {
		snprintf(err, errlen, "[cluster] key_prefix is too long");
		cluster_free(cl);
		return NULL;
	}
	if (getentropy(rnd, sizeof(rnd)) == -1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(cl->id, sizeof(cl->id), "%ld-%02x%02x%02x%02x%02x%02x%02x%02x", (long)getpid(),
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	/* who holds the name, for the audit: same host and configuration is
	 * this node (restarted, or the audit run beside it) */
	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	real = c->path != NULL ? realpath(c->path, NULL) : NULL;
	cluster_msg_node_format(cl->id, host,
	    real != NULL          ? real
	        : c->path != NULL ? c->path
	                          : "",
	    cl->record, sizeof(cl->record));
	free(real);
	cl->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	cl->loop = loop_new();
	limiter_set_hooks(l, &cluster_hooks, cl);
	return cl;
}

int
cluster_start(struct cluster *cl, char *err, size_t errlen)
{
	loop_post(cl->loop, cluster_first, cl);
	if (pthread_create(&cl->thread, NULL, cluster_main, cl) != 0) {
		snprintf(err, errlen, "cannot start the cluster thread: %s", strerror(errno));
		return -1;
	}
	cl->started = true;
	return 0;
}

void
cluster_free(struct cluster *cl)
{
	if (cl == NULL)
		return;
	if (cl->lim != NULL)
		limiter_set_hooks(cl->lim, NULL, NULL);
	if (cl->started) {
		loop_post(cl->loop, cluster_stop, cl);
		pthread_join(cl->thread, NULL);
	}
	if (cl->loop != NULL)
		loop_free(cl->loop);
	free(cl->redis);
	if (cl->password != NULL) {
		explicit_bzero(cl->password, strlen(cl->password));
		free(cl->password);
	}
	free(cl->prefix);
	free(cl->node);
	pthread_mutex_destroy(&cl->refused_mu);
	free(cl);
}

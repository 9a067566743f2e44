/*
 * server: the running process: the current configuration snapshot, the
 * shared services (authdb, queue) and one worker per event-loop thread.
 *
 * A snapshot (config + TLS contexts) is immutable and reference counted;
 * each session holds the one it was accepted under, so SIGHUP can swap in a
 * new one without touching live sessions.
 */
#ifndef SG_SERVER_SERVER_H
#define SG_SERVER_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/idmap.h"

struct admin;
struct authc;
struct cluster;
struct conf;
struct limiter;
struct listener_accept;
struct loop;
struct obs;
struct proxy_conn;
struct queue;
struct relayc;
struct sendquota;
struct tls_server;
struct vault;

struct server_snap {
	int refs;
	struct conf *conf;
	struct tls_server *tls; /* NULL when no listener uses TLS */
};

struct worker;

struct server {
	pthread_mutex_t lock; /* guards snap */
	struct server_snap *snap;
	struct authc *authc; /* the credentials, in the auth process */
	int ctl; /* the control socket from the parent (server/child.h) */
	int *lfd; /* listening sockets from the parent: [thread * nlistens + listener] */
	size_t lfd_threads, lfd_listens;
	int admin_fd; /* the [admin] socket from the parent, -1 if none */
	struct vault *vault_next; /* files of the reload being handed over */
	int log_next; /* its log file, -1: stderr */
	struct queue *queue;
	struct relayc *relayc; /* new messages to the relay process (server/relayc.h) */
	struct admin *admin; /* NULL without [admin] */
	struct limiter *limiter; /* connection limits, AUTH failures, bans */
	struct cluster *cluster; /* [cluster]: the shared state in Redis; NULL without */
	struct obs *obs; /* metrics (server/obs.h) */
	struct sendquota *sendquota; /* sending quotas, account holds */
	struct worker **workers;
	size_t nworkers;
	bool shutting_down; /* atomic */
	uint64_t next_id; /* atomic: session ids */
	long sessions; /* atomic: open sessions */
};

struct worker_listener {
	struct worker *w;
	size_t index; /* into snap->conf->listens */
	struct listener_accept *accept; /* NULL once accepting stopped */
};

struct worker {
	struct server *srv;
	struct loop *loop;
	pthread_t thread;
	struct worker_listener *listeners;
	size_t nlisteners;
	struct idmap sessions; /* id -> struct session*, this thread's only */
	struct proxy_conn *proxy_conns; /* waiting for a PROXY header (proxy_accept.c) */
};

/* The current snapshot, referenced; release with server_snap_put. */
struct server_snap *server_snap_get(struct server *srv);
void server_snap_put(struct server_snap *snap);

#endif

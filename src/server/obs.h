/*
 * obs: the server's metrics and the [admin] routes
 * /metrics and /healthz.
 *
 * The hot-path calls (replies, auth, TLS, connections, commits) are
 * lock-free: they add to the calling thread's shard of the registry
 * (lib/metrics.h); label values met for the first time create their series
 * once under the registry's mutex and are then found in a lock-free cache.
 * Every function takes o == NULL as "no metrics".
 *
 * Metrics (Prometheus text format 0.0.4):
 *   smtpgate_connections_total                     counter
 *   smtpgate_connections_open                      gauge
 *   smtpgate_replies_total{code}                   counter, every SMTP reply sent
 *   smtpgate_auth_attempts_total{mechanism,result} counter, result ok|fail|tempfail|aborted
 *   smtpgate_tls_sessions_total{version}           counter, completed handshakes
 *   smtpgate_messages_accepted_total               counter, 250 after DATA/BDAT
 *   smtpgate_commit_latency_seconds                histogram, queue_msg_commit -> durable answer
 *   smtpgate_quota_exceeded_total{limit}           counter, limit messages|recipients (locks)
 *   smtpgate_proxy_rejects_total{reason}           counter, PROXY protocol step: reason
 *                                                  not_allowed|malformed|timeout|closed
 *   smtpgate_bans_active                           gauge, from the limiter's callback
 *   smtpgate_queue_messages{state}                 gauge, state queued|held (spool scan)
 *   smtpgate_queue_oldest_age_seconds              gauge, oldest message in queue/
 */
#ifndef SG_SERVER_OBS_H
#define SG_SERVER_OBS_H

#include "lib/metrics.h"

struct admin;
struct obs;
struct server;

struct obs *obs_new(void);
void obs_free(struct obs *o);

void obs_connection_open(struct obs *o);
void obs_connection_close(struct obs *o);
void obs_reply(struct obs *o, int code);
/* mechanism and result: short names ("PLAIN", "ok"); "" reads as "none". */
void obs_auth(struct obs *o, const char *mechanism, const char *result);
void obs_tls(struct obs *o, const char *version);
void obs_accepted(struct obs *o);
void obs_commit_latency(struct obs *o, double seconds);
/* A credential check answered by the auth process (authc.h's timed). */
void obs_auth_check(struct obs *o, const char *request, double seconds);
void obs_quota_exceeded(struct obs *o, const char *limit);
/* reason: "not_allowed", "malformed", "timeout" or "closed" (proxy_accept.h). */
void obs_proxy_reject(struct obs *o, const char *reason);
/* A child process (auth, relay) ended; the parent restarts it. */
void obs_child_exit(struct obs *o, const char *process);
/* The value of smtpgate_bans_active (0 until set). */
void obs_set_bans_active(struct obs *o, metrics_gauge_cb *cb, void *arg);
/* smtpgate_cluster_up, read by cb at scrape time; before the admin thread starts. */
void obs_set_cluster_up(struct obs *o, metrics_gauge_cb *cb, void *arg);

/* Registers /metrics and /healthz on the admin listener. srv must outlive
 * the admin thread. */
void obs_admin_routes(struct obs *o, struct admin *a, struct server *srv);

#endif

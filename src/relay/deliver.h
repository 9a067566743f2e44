/*
 * deliver: one delivery attempt of one message to one destination (a route,
 * and for mx routes the recipient domain) for some of its recipients, on a
 * worker thread with the blocking client (client/client.h). It decides each
 * recipient's result and its diagnosis; it never touches the spool.
 *
 * Results (qfile.h states):
 *   2xx                                    sent
 *   5xx (RCPT, MAIL, DATA, greeting)       failed: bounced at once
 *   4xx, 421, 454, network, TLS trouble    deferred: retried with backoff
 *   530, 534, 535, 538 and their 5.7.x,    held: needs an admin (`queue flush`
 *   no STARTTLS / AUTH where required        after fixing); never bounced
 */
#ifndef SG_RELAY_DELIVER_H
#define SG_RELAY_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "explain/finding.h"
#include "queue/qfile.h"

struct conf;
struct conf_route;
struct creds;

#define DELIVER_TEXT_MAX 512
#define DELIVER_REPLY_MAX 2048 /* as CLIENT_REPLY_TEXT_MAX */

struct deliver_result {
	enum qfile_state state;
	int code; /* reply code; 0: no reply (connection, TLS, local) */
	char enh[16];
	char text[DELIVER_TEXT_MAX]; /* the reply line or what went wrong */
	const char *finding; /* reply_map / knowledge-base id, or NULL */
	/* for a refusal: the whole reply (every line, '\n' between them; ""
	 * otherwise) and what the knowledge base makes of it, so the log
	 * names the same cause and fix as `smtpgate probe` */
	char reply[DELIVER_REPLY_MAX];
	struct finding_reply why;
};

struct route_mx;

struct deliver_ctx {
	const char *helo; /* [server] hostname */
	/* its [dkim DOMAIN] sections sign smarthost and mx deliveries
	 * (dkim_sign.h); NULL: nothing is signed */
	const struct conf *conf;
	struct creds *creds;
	/* the MX router of an mx route; NULL: "mx route not available" */
	struct route_mx *(*mx_for)(void *arg, const struct conf_route *r);
	void *mx_arg;
};

/*
 * A delivery worker's session cache: the session a delivery left open so the
 * next message for the same route (and, for mx, domain) goes over it without
 * a new connection, TLS handshake and AUTH (the scheduler hands a worker the
 * next due message for the destination it just served, keeping its slot).
 * A session is reused at most DELIVER_CONN_MAX_USES times and for
 * DELIVER_CONN_MAX_AGE_S seconds, and only after a clean end of the last
 * transaction (else RSET, else it is closed). A reused session that turns
 * out to be gone (closed, reset, 421) before anything was sent is replaced
 * by a new one in the same attempt. Owned by one worker thread.
 */
#define DELIVER_CONN_MAX_USES 100
#define DELIVER_CONN_MAX_AGE_S 300

struct deliver_conn;

struct deliver_conn *deliver_conn_new(void);
bool deliver_conn_is_open(const struct deliver_conn *dc);
/* Ends the cached session (QUIT) if there is one. */
void deliver_conn_close(struct deliver_conn *dc);
/* Closes and frees; dc may be NULL. */
void deliver_conn_free(struct deliver_conn *dc);

/* Delivers q to route r (domain: the recipients' domain, for mx) for the
 * recipients idx[0..n); results go to res[0..n), the peer to relay_r. dc:
 * the worker's session cache (NULL: a new session, closed at the end). */
void deliver_run(const struct deliver_ctx *ctx, struct deliver_conn *dc, const struct conf_route *r,
    const char *domain, const struct qfile *q, const size_t *idx, size_t n,
    struct deliver_result *res, char *relay_r, size_t relaylen);

/* Pure: the state for a refusal with code/enh (a reply to cmd). */
enum qfile_state deliver_classify(int code, const char *enh, const char *cmd);

#endif

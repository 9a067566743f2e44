/*
 * route_mx: delivery to a domain's MX hosts (`[relay] route = mx`).
 *
 * Two steps, both blocking (for a delivery worker thread, never an event-loop
 * thread), every DNS query and HTTPS fetch under its own deadline:
 *
 * 1. route_mx_resolve(): the plan for a domain. MX look-up (RFC 5321 5.1:
 *    sorted by preference, equal preferences shuffled; no MX: the domain
 *    itself is the implicit MX; null MX "0 ." (RFC 7505): permanent failure),
 *    the A and AAAA addresses of each host (bounded), the DNSSEC status of
 *    each answer, TLSA records at _PORT._tcp.HOST when both the MX answer and
 *    the host's address answers are secure (RFC 7672 2.2: only then does DANE
 *    apply), and the domain's MTA-STS policy (RFC 8461: TXT _mta-sts.DOMAIN,
 *    the policy fetched over HTTPS and cached by domain and id for max_age,
 *    in memory and, with conf.sts_cache_dir, on disk so that it survives a
 *    restart (RFC 8461 5.1, 10.2); refetched when the id changes; a failed
 *    fetch or a missing TXT record falls back to an unexpired cached policy,
 *    else to no policy). Each host gets a TLS requirement (route_mx_decide):
 *
 *      DANE      secure MX + addresses + at least one usable TLSA record
 *                (usage 2 or 3, RFC 7672 3.1.3): STARTTLS required, the chain
 *                must match a TLSA record (OpenSSL's DANE API). DANE takes
 *                precedence over MTA-STS (RFC 8461 2).
 *      ENCRYPT   secure TLSA RRset with no usable record (RFC 7672 2.2):
 *                STARTTLS required, no authentication.
 *      STS       MTA-STS policy in mode enforce: STARTTLS required, the
 *                certificate verified (PKIX, peer+host against the MX name);
 *                hosts that match no "mx:" pattern are skipped.
 *      OPPORTUNISTIC  otherwise (and for MTA-STS testing): STARTTLS when
 *                offered, nothing verified, plaintext when not offered (and
 *                after a failed handshake, on a new connection).
 *    A host whose TLSA look-up failed (SERVFAIL, bogus) although its answers
 *    are secure, or that an enforced policy excludes, is kept in the plan
 *    with skip = true and its reason (RFC 7672 2.2: it must not be used).
 *
 * 2. route_mx_open(): the next session from a cursor over the plan: for each
 *    usable host in order, each address: connect, greeting, EHLO, STARTTLS as
 *    required (fails closed: no STARTTLS, a failed handshake or a certificate
 *    that does not match means the next address/host), EHLO again. The
 *    caller then sends the envelope and the message on the returned client.
 *
 * How delivery calls it, per destination domain (one worker thread):
 *
 *	struct route_mx *mx = route_mx_new(&rc, err, sizeof(err));  // once, at start
 *	...
 *	struct route_mx_plan plan;
 *	if (route_mx_resolve(mx, "example.org", &plan, err, sizeof(err)) == -1) {
 *		// plan.permanent ? fail every recipient (5xx, err) : retry later (err)
 *		route_mx_plan_free(&plan);
 *		return;
 *	}
 *	struct route_mx_cursor cur = {0};
 *	struct route_mx_attempt at;
 *	struct client *c;
 *	while ((c = route_mx_open(mx, &plan, &cur, &at)) != NULL) {
 *		// client_mail / client_rcpt / client_data as for any route;
 *		// a 4xx or a connection failure here: client_free(c) and loop
 *		// (RFC 5321 5.1: try the next MX); a 5xx or success: per-recipient
 *		// results, client_quit(c), client_free(c), break.
 *	}
 *	// c == NULL: no host took the message; at.reason says why (the last
 *	// failure, "host addr: ..."), at.transient whether to retry (always true
 *	// except when every host answered 5xx to the greeting/EHLO).
 *	route_mx_plan_free(&plan);
 *	...
 *	route_mx_free(mx);  // at shutdown, after every worker stopped
 *
 * A struct route_mx is shared by all worker threads (the MTA-STS cache has a
 * lock; resolvers come from a small pool, one per thread at a time). Log
 * lines are the caller's: the plan and the attempt say what to log.
 */
#ifndef SG_RELAY_ROUTE_MX_H
#define SG_RELAY_ROUTE_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "client/client.h"
#include "dns/dns_resolve.h"
#include "dns/mtasts_parse.h"

#define ROUTE_MX_HOSTS_MAX 10 /* MX hosts kept (lowest preferences first) */
#define ROUTE_MX_ADDRS_MAX 8 /* addresses per host, A and AAAA together */
#define ROUTE_MX_TLSA_MAX 8 /* TLSA records kept per host */
#define ROUTE_MX_TLSA_DATA_MAX 2048 /* bytes of association data (full certificates) */
#define ROUTE_MX_NAME_MAX 256 /* RFC 1035 2.3.4: 255 octets, plus NUL */
#define ROUTE_MX_REASON_MAX 512
#define ROUTE_MX_STS_CACHE_MAX 1024 /* domains whose MTA-STS policy is cached in memory */
#define ROUTE_MX_STS_DISK_MAX 10000 /* policy files kept there; new domains beyond: not saved */
#define ROUTE_MX_STS_FILE_MAX (4 * MTASTS_POLICY_MAX) /* bytes of one file we read */
#define ROUTE_MX_STS_FILE_VERSION 1 /* "smtpgate-mta-sts" in a policy file */
#define ROUTE_MX_PORT_DEFAULT "25"
#define ROUTE_MX_DNS_TIMEOUT_DEFAULT 5.0 /* seconds per DNS query */
#define ROUTE_MX_STS_TIMEOUT_DEFAULT 10.0 /* seconds for a policy fetch */

/* --- injectable look-ups (unit tests; NULL members: the real ones) -------- */

struct route_mx_ops {
	/* One DNS question, as dns_query() answers it (a is then freed with
	 * dns_answer_free, so texts must be malloc'd). */
	void (*query)(void *arg, const char *name, int type, struct dns_answer *a);
	/* The MTA-STS policy file of domain, as mtasts_fetch() returns it. */
	int (*fetch)(
	    void *arg, const char *domain, char **body_r, size_t *len_r, char *err, size_t errlen);
	/* Wall-clock seconds, for the MTA-STS cache. */
	time_t (*now)(void *arg);
	/* Uniform in [0, n) for shuffling equal preferences. */
	uint32_t (*random)(void *arg, uint32_t n);
	void *arg;
};

/* --- configuration ------------------------------------------------------- */

struct route_mx_conf {
	const char *resolver; /* [relay] resolver = ADDR[:PORT]; NULL: /etc/resolv.conf */
	const char *dnssec_anchor; /* [relay] dnssec_anchor = FILE; NULL: the system's root
				    * key; "none": nothing is secure (so no DANE) */
	double dns_timeout; /* seconds per query; 0: ROUTE_MX_DNS_TIMEOUT_DEFAULT */
	const char *port; /* [relay] mx_port (tests and labs only); NULL: "25" */
	bool no_dane; /* [relay] dane = no */
	bool no_mta_sts; /* [relay] mta_sts = no */
	const char *cafile; /* [relay] ca: PKIX roots for MTA-STS (policy fetch and MX
			     * certificates); NULL: the system store */
	const char *sts_port; /* [relay] mta_sts_port (tests and labs only); NULL: 443 */
	double sts_timeout; /* 0: ROUTE_MX_STS_TIMEOUT_DEFAULT */
	const char *sts_cache_dir; /* the persistent MTA-STS cache, SPOOL/mta-sts (created
				    * when a policy is first saved, 0700); NULL: memory only */
	size_t sts_cache_files; /* 0: ROUTE_MX_STS_DISK_MAX (tests set less) */
	const char *helo; /* EHLO name ([server] hostname) */
	int timeout_ms; /* per client step (connect, reply, handshake); 0: client default */
	const struct route_mx_ops *ops; /* NULL: libunbound, libcurl, time(), arc4random */
};

/* --- the plan -------------------------------------------------------------- */

enum route_mx_tls {
	ROUTE_MX_TLS_OPPORTUNISTIC, /* STARTTLS if offered; no verification */
	ROUTE_MX_TLS_DANE, /* STARTTLS required; chain matches a TLSA record */
	ROUTE_MX_TLS_ENCRYPT, /* STARTTLS required; no authentication */
	ROUTE_MX_TLS_STS, /* STARTTLS required; PKIX peer+host (MX name) */
};

enum route_mx_sts_mode {
	ROUTE_MX_STS_NONE, /* no policy (none published, mode none, or unfetchable) */
	ROUTE_MX_STS_TESTING,
	ROUTE_MX_STS_ENFORCE,
};

struct route_mx_addr {
	struct sockaddr_storage ss;
	socklen_t sslen; /* for client_connect_addr */
	char text[48]; /* "192.0.2.1", "2001:db8::1" */
};

struct route_mx_host {
	char name[ROUTE_MX_NAME_MAX]; /* MX host, no final dot */
	char tlsa_base[ROUTE_MX_NAME_MAX]; /* TLSA base domain (CNAME target when secure) */
	unsigned pref;
	bool implicit; /* the domain itself (no MX record, RFC 5321 5.1) */
	bool cname; /* the name was a CNAME (tolerated; RFC 5321 5.1 says it should not) */
	enum dns_security addr_security; /* worst of its A and AAAA answers */
	struct route_mx_addr addrs[ROUTE_MX_ADDRS_MAX];
	size_t naddrs;
	enum route_mx_tls tls;
	struct client_tlsa tlsa[ROUTE_MX_TLSA_MAX]; /* usable ones (DANE); data malloc'd */
	size_t ntlsa;
	bool sts_match; /* matches an mx pattern of the policy (when there is one) */
	bool skip; /* do not deliver here: reason */
	char reason[ROUTE_MX_REASON_MAX]; /* why skipped, or a note ("" when none) */
};

struct route_mx_plan {
	char domain[ROUTE_MX_NAME_MAX];
	bool permanent; /* after -1: the failure is final (5xx), else retry later */
	enum dns_security mx_security;
	bool implicit_mx; /* no MX record: hosts[0] is the domain */
	bool mx_truncated; /* more MX hosts than ROUTE_MX_HOSTS_MAX */
	struct route_mx_host hosts[ROUTE_MX_HOSTS_MAX]; /* delivery order */
	size_t nhosts;
	enum route_mx_sts_mode sts_mode;
	char sts_id[MTASTS_ID_MAX + 1]; /* the policy in use ("" when none) */
	bool sts_cached; /* the policy came from the cache (memory or disk) */
	bool sts_from_disk; /* ... and was read from conf.sts_cache_dir for this plan */
	char sts_note[ROUTE_MX_REASON_MAX]; /* e.g. why a published policy was not fetched */
	char notes[ROUTE_MX_REASON_MAX]; /* other remarks: CNAME'd MX, truncation */
};

/* --- the outcome of route_mx_open ---------------------------------------- */

struct route_mx_cursor {
	size_t host, addr; /* next to try; {0, 0} to start */
	bool plain_retry; /* internal: the opportunistic plaintext retry is due */
};

struct route_mx_attempt {
	char host[ROUTE_MX_NAME_MAX]; /* last host tried */
	char addr[48]; /* last address tried */
	enum route_mx_tls tls; /* its requirement */
	bool tls_active; /* the session (when returned) is encrypted */
	bool verified; /* DANE matched, or PKIX peer+host verified (STS) */
	char dane_match[64]; /* "3 1 1 at depth 0" when DANE matched */
	bool transient; /* after NULL: retry later (else every host said 5xx) */
	char reason[ROUTE_MX_REASON_MAX]; /* after NULL: the last failure; else notes */
};

struct route_mx;

/* Creates the shared MX router (resolver pool, MTA-STS cache, the TLS
 * context with DANE enabled). rc's strings are copied. NULL with err set on
 * a configuration error (bad resolver address, unreadable anchor or CA).
 * With rc->sts_cache_dir it also scans that folder (blocking: call it at
 * start-up): counts the policy files, removes expired, corrupt and stale
 * temporary ones. A folder that cannot be read is not an error (the cache
 * is then in memory until saving works). */
struct route_mx *route_mx_new(const struct route_mx_conf *rc, char *err, size_t errlen);
/* Frees mx (NULL: no-op). No call may be running. */
void route_mx_free(struct route_mx *mx);

/*
 * The delivery plan for domain (an ASCII or A-label name, no final dot).
 * 0: plan_r holds at least one host that is not skipped. -1: no way to
 * deliver now; err says why and plan_r->permanent whether it is final:
 * permanent for a null MX ("domain does not accept mail (null MX, RFC
 * 7505)"), NXDOMAIN, and no MX with no address; transient for timeouts,
 * SERVFAIL, bogus DNSSEC and hosts all skipped. plan_r must be freed with
 * route_mx_plan_free in both cases.
 */
int route_mx_resolve(struct route_mx *mx, const char *domain, struct route_mx_plan *plan_r,
    char *err, size_t errlen) __attribute__((warn_unused_result));
void route_mx_plan_free(struct route_mx_plan *plan);

/*
 * The next SMTP session for plan, from *cur onwards (advanced past what was
 * used, so calling it again after a 4xx moves on to the next address/host).
 * Returns a client after EHLO (after STARTTLS and the second EHLO when TLS
 * is used), ready for client_mail(); the caller frees it. NULL when no
 * address is left: at_r->reason holds the last failure. at_r is filled in
 * both cases. The plan must outlive the returned client.
 */
struct client *route_mx_open(struct route_mx *mx, const struct route_mx_plan *plan,
    struct route_mx_cursor *cur, struct route_mx_attempt *at_r);

/*
 * Lower level: the client_conf for host h of plan (host, port, helo,
 * timeout, TLS mode, verification, DANE records, the shared TLS context).
 * Pointers in cc_r point into mx and plan. For callers that drive the
 * client themselves: require STARTTLS unless h->tls is OPPORTUNISTIC.
 */
void route_mx_client_conf(const struct route_mx *mx, const struct route_mx_plan *plan,
    const struct route_mx_host *h, struct client_conf *cc_r);

/* --- pure parts, exposed for tests --------------------------------------- */

enum route_mx_tlsa_state {
	ROUTE_MX_TLSA_NONE, /* NXDOMAIN/NODATA, or DANE not applicable */
	ROUTE_MX_TLSA_USABLE, /* secure, at least one usable record */
	ROUTE_MX_TLSA_UNUSABLE, /* secure, records present, none usable */
	ROUTE_MX_TLSA_FAILED, /* SERVFAIL, timeout or bogus while DANE applies */
};

struct route_mx_decision {
	enum route_mx_tls tls;
	bool skip;
	const char *why; /* static text */
};

/* The TLS requirement of one host (RFC 7672 2.2, RFC 8461 4 and 5). */
struct route_mx_decision route_mx_decide(bool mx_secure, bool addr_secure,
    enum route_mx_tlsa_state tlsa, enum route_mx_sts_mode sts, bool sts_match);
/* RFC 7672 3.1.3: DANE-TA(2) and DANE-EE(3), selector 0/1, mtype 0/1/2. */
bool route_mx_tlsa_is_usable(unsigned usage, unsigned selector, unsigned mtype, size_t len);
/*
 * The MTA-STS disk cache's file (doc/spool.md, "MTA-STS policy cache"):
 * format gives the malloc'd text for a policy of domain fetched at `fetched`
 * (body as fetched), NULL when body is not UTF-8. parse checks such a text
 * for domain at time now: 0 with id_r, *fetched_r and p_r (the policy
 * parsed again by mtasts_policy_parse), -1 with a static *why_r when it is
 * corrupt or expired. p_r is freed with mtasts_policy_free in both cases.
 */
char *route_mx_sts_file_format(
    const char *domain, const char *id, time_t fetched, const char *body, size_t len);
int route_mx_sts_file_parse(const char *domain, const char *text, size_t len, time_t now,
    char id_r[MTASTS_ID_MAX + 1], time_t *fetched_r, struct mtasts_policy *p_r, const char **why_r)
    __attribute__((warn_unused_result));
const char *route_mx_tls_name(enum route_mx_tls t);
const char *route_mx_sts_mode_name(enum route_mx_sts_mode m);

#endif

/*
 * bounce: the RFC 3464 delivery status notification sent to the envelope
 * sender when recipients fail for good (a 5xx, or expiry), or, once per
 * message, when recipients are still being retried after the route's
 * delay_warning (a delay warning: Action: delayed). Pure: builds the
 * message bytes; the scheduler queues it with the null sender (RFC 5321
 * 4.5.5), so a DSN that fails is dropped, never bounced again.
 *
 *   multipart/report; report-type=delivery-status
 *     text/plain                 what happened, per recipient
 *     message/delivery-status    Reporting-MTA, Arrival-Date; per recipient
 *                                Final-Recipient, Action: failed|delayed,
 *                                Status, Remote-MTA, Diagnostic-Code,
 *                                Last-Attempt-Date, (delayed) Will-Retry-Until
 *     text/rfc822-headers        the original header section
 */
#ifndef SG_RELAY_BOUNCE_H
#define SG_RELAY_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"

#define BOUNCE_HEADERS_MAX 65536 /* bytes of the original header section kept */

struct bounce_rcpt {
	const char *rcpt;
	int code; /* 0: no reply */
	const char *enh; /* "" when none */
	const char *text; /* reason */
	const char *relay; /* the peer, "" when none */
	bool expired;
	time_t when; /* last attempt; 0: none yet (delayed only) */
	time_t retry_until; /* delayed: when it gives up (arrival + expire) */
};

struct bounce_in {
	const char *hostname; /* Reporting-MTA, From: MAILER-DAEMON@ */
	const char *queue_id;
	const char *sender; /* the original sender: To: of the DSN */
	time_t arrival;
	time_t now;
	const char *body; /* the original message, for its header section */
	size_t body_len;
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	bool delayed; /* a delay warning: every recipient is still being retried */
};

/* Appends the DSN to out (CRLF line ends). -1 if out's limit is hit.
 * eightbit_r: the copied headers hold 8-bit bytes (send as 8BITMIME). */
int bounce_build(const struct bounce_in *in, struct buf *out, bool *eightbit_r)
    __attribute__((warn_unused_result));
/* RFC 3463 status of a failed recipient: its enhanced code when it is one
 * of class 5 (or 4.4.7 for expiry), else 5.0.0. Of a delayed one (delayed
 * true): its enhanced code when it is one of class 4, else 4.4.0 without a
 * reply (network or routing trouble), 4.0.0 with one. */
void bounce_status(const struct bounce_rcpt *r, bool delayed, char out[16]);

#endif

/*
 * bounce: builds RFC 3464 DSNs (bounce.h), failures and delay warnings
 * from the same code; only the wording, Action and the Will-Retry-Until
 * field differ. Every line is CRLF-terminated and short (reasons come from
 * the client already escaped and cut at 512 bytes), so the result is valid
 * 7-bit MIME unless the original headers carried 8-bit bytes, which
 * eightbit_r then reports.
 */
#include "relay/bounce.h"

#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

void
bounce_status(const struct bounce_rcpt *r, bool delayed, char out[16])
{
	if (delayed) {
		/* RFC 3464 2.3.4: a delayed recipient has a 4.X.X status */
		if (r->enh != NULL && r->enh[0] == '4')
			snprintf(out, 16, "%s", r->enh);
		else
			snprintf(out, 16, "%s", r->code == 0 ? "4.4.0" : "4.0.0");
		return;
	}
	if (r->expired) {
		/* RFC 3463 4.4.7: delivery time expired */
		snprintf(out, 16, "4.4.7");
		return;
	}
	if (r->enh != NULL && r->enh[0] == '5') {
		snprintf(out, 16, "%s", r->enh);
		return;
	}
	snprintf(out, 16, "5.0.0");
}

static void
bounce_date(time_t t, char *out, size_t n)
{
	struct tm tm;

	/* RFC 5322 3.3 */
	if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* The reply part of a reason such as "RCPT: 550 5.1.1 no such user". */
static const char *
bounce_reply_text(const struct bounce_rcpt *r)
{
	char code[8];
	const char *p;

	if (r->code == 0)
		return NULL;
	snprintf(code, sizeof(code), "%d", r->code);
	p = strstr(r->text, code);
	return p;
}

int
bounce_build(const struct bounce_in *in, struct buf *out, bool *eightbit_r)
{
	unsigned char rnd[8];
	char boundary[64], date[64], status[16];
	const char *hend;
	size_t hlen;
	int r = 0;
	const bool dl = in->delayed;

	*eightbit_r = false;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0x5a, sizeof(rnd));
	snprintf(boundary, sizeof(boundary), "%s/%02x%02x%02x%02x%02x%02x%02x%02x", in->queue_id,
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	bounce_date(in->now, date, sizeof(date));
	r |= buf_printf(out,
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "Date: %s\r\n"
	    /* a later failure DSN of the same message must not reuse the id */
	    "Message-ID: <%s.%s@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated delivery status notification (RFC 3464).\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Description: Notification\r\n"
	    "\r\n"
	    "This is the mail system at %s.\r\n"
	    "\r\n",
	    in->hostname, in->sender,
	    dl ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender", date,
	    in->queue_id, dl ? "delay" : "dsn", in->hostname, boundary, boundary, in->hostname);
	if (dl)
		r |= buf_printf(out,
		    "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.\r\n"
		    "\r\n"
		    "Your message (queue id %s) has not been delivered yet to the\r\n"
		    "recipients below. It has NOT failed: the mail system keeps trying,\r\n"
		    "and nothing needs doing now. If a recipient still cannot be reached\r\n"
		    "by the time given for it, the mail system gives up and sends you\r\n"
		    "another notice saying so.\r\n"
		    "\r\n",
		    in->queue_id);
	else
		r |= buf_printf(out,
		    "Your message (queue id %s) could not be delivered to the recipients\r\n"
		    "below. The reasons are given for each one.\r\n"
		    "\r\n",
		    in->queue_id);
	for (size_t i = 0; i < in->nrcpts; i++) {
		const struct bounce_rcpt *rc = &in->rcpts[i];

		if (dl) {
			bounce_date(rc->retry_until, date, sizeof(date));
			r |= buf_printf(out, "<%s>: still trying until %s; %s%s\r\n\r\n", rc->rcpt,
			    date, rc->text[0] != '\0' ? "last error: " : "not tried yet", rc->text);
		} else
			r |= buf_printf(out, "<%s>: %s%s\r\n\r\n", rc->rcpt,
			    rc->expired ? "delivery time expired; last error: " : "", rc->text);
	}
	bounce_date(in->arrival, date, sizeof(date));
	r |= buf_printf(out,
	    "--%s\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Smtpgate-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n",
	    boundary, in->hostname, in->queue_id, date);
	for (size_t i = 0; i < in->nrcpts; i++) {
		const struct bounce_rcpt *rc = &in->rcpts[i];
		const char *reply = bounce_reply_text(rc);

		bounce_status(rc, dl, status);
		/* RFC 3464 2.3: per-recipient fields, each group after a blank line */
		r |= buf_printf(out,
		    "\r\n"
		    "Final-Recipient: rfc822; %s\r\n"
		    "Action: %s\r\n"
		    "Status: %s\r\n",
		    rc->rcpt, dl ? "delayed" : "failed", status);
		if (rc->relay != NULL && rc->relay[0] != '\0' && rc->relay[0] != '/')
			r |= buf_printf(out, "Remote-MTA: dns; %s\r\n", rc->relay);
		if (reply != NULL)
			r |= buf_printf(out, "Diagnostic-Code: smtp; %s\r\n", reply);
		else if (rc->text[0] != '\0')
			r |= buf_printf(out, "Diagnostic-Code: X-smtpgate; %s\r\n", rc->text);
		if (rc->when != 0) {
			bounce_date(rc->when, date, sizeof(date));
			r |= buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
		}
		if (dl) {
			/* RFC 3464 2.3.9: when the MTA stops trying */
			bounce_date(rc->retry_until, date, sizeof(date));
			r |= buf_printf(out, "Will-Retry-Until: %s\r\n", date);
		}
	}
	r |= buf_printf(out,
	    "\r\n"
	    "--%s\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "Content-Description: %s\r\n"
	    "\r\n",
	    boundary, dl ? "Headers of the delayed message" : "Undelivered message headers");
	/* the header section: up to the empty line, bounded */
	hlen = in->body_len < BOUNCE_HEADERS_MAX ? in->body_len : BOUNCE_HEADERS_MAX;
	hend = memmem(in->body, hlen, "\r\n\r\n", 4);
	if (hend != NULL)
		hlen = (size_t)(hend - in->body) + 2;
	else if (hlen > 0) {
		/* cut at the last full line */
		const char *p = in->body + hlen;

		while (p > in->body && !(p[-1] == '\n'))
			p--;
		hlen = (size_t)(p - in->body);
	}
	for (size_t i = 0; i < hlen; i++) {
		if ((unsigned char)in->body[i] >= 0x80)
			*eightbit_r = true;
	}
	r |= buf_append(out, in->body, hlen);
	r |= buf_printf(out, "\r\n--%s--\r\n", boundary);
	return r == 0 ? 0 : -1;
}

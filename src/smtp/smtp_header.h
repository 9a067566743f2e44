/*
 * smtp_header: an incremental parser of a message's header section (RFC
 * 5322 2.2, 3.6) that extracts the addresses of its From: fields, for
 * sender binding. Fed the message bytes as they stream (after DATA
 * un-dot-stuffing, or BDAT chunks), in pieces of any size, down to one
 * byte: the result does not depend on how the input was split. It stops
 * looking at the first empty line (the end of the header section).
 *
 * What it understands in a From: field (RFC 5322 3.4, 3.6.2): a
 * mailbox-list, each mailbox a bare addr-spec or "display name <addr-spec>";
 * display names with quoted strings (commas, '<' and '@' inside quotes are
 * text), comments in parentheses (nested, with quoted-pairs), encoded words
 * (left as text), folded lines, obs-route in angle brackets, and group
 * syntax ("name: a@b, c@d;"). Field names are case-insensitive, with
 * optional white space before the colon (RFC 5322 4.5). A CR is ignored, LF
 * ends a line (the session refuses bare CR/LF separately).
 *
 * A line that is neither a field nor a continuation ends the header section
 * (as the mail readers that tolerate it do: what follows is body). A From:
 * field that cannot be parsed, is longer than SMTP_HEADER_FIELD_MAX, or
 * holds more than SMTP_HEADER_ADDRS_MAX addresses makes the result
 * SMTP_HEADER_FROM_BAD.
 *
 * Pure: no I/O. The struct owns a bounded buffer for the field in progress
 * and the address list (smtp_header_clear frees them).
 */
#ifndef SG_SMTP_SMTP_HEADER_H
#define SG_SMTP_SMTP_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "smtp/smtp_cmd.h"

#define SMTP_HEADER_FIELD_MAX 16384 /* one From: field, unfolded (RFC 5322 2.1.1: 998 per line) */
#define SMTP_HEADER_ADDRS_MAX 64 /* addresses in all From: fields */
#define SMTP_HEADER_NAME_MAX 32 /* longer field names are not interesting */

enum smtp_header_from {
	SMTP_HEADER_FROM_NONE, /* no From: field (RFC 5322 3.6 requires one) */
	SMTP_HEADER_FROM_OK, /* addrs holds every address of every From: field */
	SMTP_HEADER_FROM_BAD, /* a From: field is malformed, too long, or too full */
};

enum smtp_header_state {
	SMTP_HEADER_LINE_START,
	SMTP_HEADER_NAME,
	SMTP_HEADER_VALUE,
	SMTP_HEADER_DONE,
};

struct smtp_header {
	enum smtp_header_state state;
	char name[SMTP_HEADER_NAME_MAX + 1];
	size_t namelen;
	bool name_long; /* longer than SMTP_HEADER_NAME_MAX: not From */
	bool name_ws; /* white space seen after the name (before ':') */
	bool in_from; /* the field in progress is a From: field */
	struct buf field; /* its unfolded value */
	bool bad;
	size_t nfrom; /* From: fields seen */
	char **addrs; /* malloc'd NUL-terminated addr-specs */
	size_t naddrs;
};

void smtp_header_init(struct smtp_header *h);
void smtp_header_clear(struct smtp_header *h);
/* Feeds n bytes. Everything after the end of the header section is ignored. */
void smtp_header_feed(struct smtp_header *h, const char *p, size_t n);
/* The end of the message: completes a field still in progress. */
void smtp_header_finish(struct smtp_header *h);
/* True once the header section has ended (or smtp_header_finish ran). */
bool smtp_header_is_done(const struct smtp_header *h);
/* The verdict, after smtp_header_finish (or once done). */
enum smtp_header_from smtp_header_result(const struct smtp_header *h);

/*
 * Parses one unfolded From: value p[0..len) (a mailbox-list) and calls
 * add_cb with each addr-spec (NUL-terminated, valid during the call).
 * -1 when it is malformed. Exposed for tests.
 */
int smtp_header_parse_from(const char *p, size_t len,
    int (*add_cb)(void *arg, const char *addr, size_t addrlen), void *arg)
    __attribute__((warn_unused_result));

#endif

/*
 * smtp_data: DATA framing (RFC 5321 4.1.1.4, 4.5.2) and the bare CR/LF check
 * shared with BDAT. Pure and incremental: input may arrive split anywhere,
 * one byte at a time included, and the output is the same.
 *
 * The end of data is CRLF "." CRLF and nothing else: "\n.\n", "\r.\r" and
 * other look-alikes are not ends (SMTP smuggling). Leading dots are removed
 * (dot-stuffing). Every bare LF and bare CR (one not part of a CRLF pair) is
 * counted; the message is then refused (550 5.5.2) but reading continues to
 * the real end so the session stays in sync.
 */
#ifndef SG_SMTP_SMTP_DATA_H
#define SG_SMTP_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_data {
	int state; /* private */
	uint64_t size; /* message bytes produced so far (after un-stuffing) */
	uint64_t bare; /* bare CR or LF seen */
	bool done; /* end of data seen */
};

void smtp_data_init(struct smtp_data *d);

/*
 * Feeds in[0..len). Message bytes (CRLF line ends kept, dots un-stuffed, the
 * final CRLF "." CRLF excluded but the CRLF ending the last line included)
 * are passed to out(arg, p, n) in order, possibly in several calls. Returns
 * the number of input bytes consumed: all of them unless the end was reached,
 * in which case the bytes after the terminating CRLF are left for the
 * command parser (pipelining) and d->done is true.
 */
typedef void smtp_data_out_cb(void *arg, const char *p, size_t n);
size_t smtp_data_feed(
    struct smtp_data *d, const char *in, size_t len, smtp_data_out_cb *out, void *arg);

/* For BDAT chunks (no dot-stuffing, no terminator): counts bare CR/LF across
 * chunk boundaries. Call smtp_bare_finish at the LAST chunk: a trailing CR
 * then counts as bare. */
struct smtp_bare {
	bool prev_cr;
	uint64_t bare;
};
void smtp_bare_init(struct smtp_bare *b);
void smtp_bare_feed(struct smtp_bare *b, const char *p, size_t n);
void smtp_bare_finish(struct smtp_bare *b);

#endif

/* libFuzzer target: SCRAM client messages, as the session feeds them.
 * The input is split at the first newline into a client-first and a
 * client-final message; the first goes through our parser
 * (sasl_scram_parse_first), then the whole exchange runs through the
 * SCRAM-SHA-256-PLUS or SCRAM-SHA-256 mechanism (chosen by the first byte)
 * with fixed stored keys and channel binding data. The CRAM-MD5 response
 * parser gets the raw input too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sasl/sasl.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_mech.h"
#include "sasl/sasl_plain.h"
#include "sasl/sasl_scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *nl, *u;
	struct sasl_scram_first f;
	struct sasl_exchange *x;
	struct sasl_context ctx;
	struct sasl_keys k;
	struct buf out;
	const char *why;
	unsigned char d[16];
	size_t firstlen, ul;
	bool plus;

	if (size == 0)
		return 0;
	(void)sasl_cram_parse_response(p, size, &u, &ul, d);
	plus = (data[0] & 1) != 0;
	p++;
	size--;
	nl = memchr(p, '\n', size);
	firstlen = nl != NULL ? (size_t)(nl - p) : size;
	if (sasl_scram_parse_first(p, firstlen, &f, &why) == 0) {
		if (f.userlen == 0 || f.userlen > SASL_USER_MAX || f.noncelen == 0 ||
		    memchr(f.user, '\0', f.userlen) != NULL)
			abort();
	} else if (why == NULL) {
		abort();
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.hostname = "fuzz.example";
	ctx.plus_offered = true;
	memset(ctx.cb[SASL_CB_TLS_EXPORTER], 0x42, 32);
	ctx.cblen[SASL_CB_TLS_EXPORTER] = 32;
	memset(ctx.cb[SASL_CB_TLS_UNIQUE], 0x24, 12);
	ctx.cblen[SASL_CB_TLS_UNIQUE] = 12;
	memset(&k, 0, sizeof(k));
	k.iter = 4096;
	memset(k.salt, 0x11, 16);
	k.saltlen = 16;
	memset(k.stored_key, 0x22, 32);
	memset(k.server_key, 0x33, 32);
	k.keylen = 32;

	x = sasl_new(sasl_mech_find(plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256"));
	sasl_set_context(x, &ctx);
	buf_init(&out, 16384);
	if (sasl_step(x, p, firstlen, true, &out) == SASL_NEED_KEYS) {
		sasl_set_keys(x, &k, "user");
		if (sasl_resume(x, &out) == SASL_CONTINUE && nl != NULL) {
			buf_reset(&out);
			/* random keys: a proof never matches */
			if (sasl_step(x, nl + 1, size - firstlen - 1, true, &out) == SASL_CONTINUE)
				abort();
		}
	}
	buf_free(&out);
	sasl_free(x);
	return 0;
}

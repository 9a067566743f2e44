/*
 * libFuzzer target: the spool envelope parser and trailer parser must never
 * crash or leak, and whatever parses must survive encode -> parse unchanged
 * (so no value can smuggle a line past the escaping).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "queue/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_roundtrip(const struct envelope *e)
{
	struct queue_envelope qe = {
	    .sender = e->sender,
	    .rcpts = (const char *const *)e->rcpts,
	    .nrcpts = e->nrcpts,
	    .auth_user = e->auth_user,
	    .client_addr = e->client_addr,
	    .helo = e->helo,
	    .smtputf8 = e->smtputf8,
	    .body_8bit = e->body_8bit,
	    .arrival = e->arrival,
	};
	const char *errstr;
	struct envelope *e2;
	struct buf b;

	buf_init(&b, ENVELOPE_MAX);
	if (envelope_encode(e->id, &qe, &b) == -1)
		abort();
	e2 = envelope_parse(b.data, b.len, &errstr);
	if (e2 == NULL || strcmp(e2->id, e->id) != 0 || strcmp(e2->sender, e->sender) != 0 ||
	    e2->nrcpts != e->nrcpts || strcmp(e2->helo, e->helo) != 0 ||
	    strcmp(e2->client_addr, e->client_addr) != 0 || e2->arrival != e->arrival ||
	    (e->auth_user == NULL) != (e2->auth_user == NULL))
		abort();
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (strcmp(e2->rcpts[i], e->rcpts[i]) != 0)
			abort();
	}
	envelope_free(e2);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char hash[ENVELOPE_HASH_LEN];
	uint64_t body, env;
	const char *errstr;
	struct envelope *e;

	if (size >= ENVELOPE_TRAILER_LEN)
		(void)!envelope_trailer_parse((const char *)data, &body, &env, hash);
	e = envelope_parse((const char *)data, size, &errstr);
	if (e != NULL)
		fuzz_roundtrip(e);
	envelope_free(e);
	return 0;
}

/*
 * libFuzzer target: the delivery state of an envelope (attempts, next-try,
 * warned, rcpt-status; queue/qfile.h). Whatever parses must never crash or leak, and
 * the state must survive encode -> parse unchanged, with every field of later
 * versions kept.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "queue/envelope.h"
#include "queue/qfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_free_state(struct qfile_rcpt *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rs[i].text);
	free(rs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *errstr;
	struct envelope *e = envelope_parse((const char *)data, size, &errstr), *e2;
	struct qfile_rcpt *rs, *rs2;
	unsigned attempts, attempts2;
	long long next, next2, warned, warned2;
	struct buf b;

	if (e == NULL)
		return 0;
	rs = xcalloc(e->nrcpts, sizeof(*rs));
	rs2 = xcalloc(e->nrcpts, sizeof(*rs2));
	qfile_parse_state(e, &attempts, &next, &warned, rs);
	buf_init(&b, 2 * ENVELOPE_MAX);
	if (qfile_encode(e, attempts, next, warned, rs, &b) == 0) {
		e2 = envelope_parse(b.data, b.len, &errstr);
		if (e2 == NULL || e2->nrcpts != e->nrcpts)
			abort();
		qfile_parse_state(e2, &attempts2, &next2, &warned2, rs2);
		if (attempts2 != attempts || (next != 0 && next2 != next) || warned2 != warned)
			abort();
		for (size_t i = 0; i < e->nrcpts; i++) {
			if (rs2[i].state != rs[i].state ||
			    (rs[i].state != QFILE_PENDING &&
			        (rs2[i].code != rs[i].code || strcmp(rs2[i].enh, rs[i].enh) != 0 ||
			            rs2[i].when != rs[i].when)))
				abort();
		}
		envelope_free(e2);
	}
	buf_free(&b);
	fuzz_free_state(rs, e->nrcpts);
	fuzz_free_state(rs2, e->nrcpts);
	envelope_free(e);
	return 0;
}

/*
 * libFuzzer target: the MTA-STS disk cache file (relay/route_mx,
 * doc/spool.md). First byte even: the input is a cache file, which must
 * never crash or leak, and when it is accepted its fields must be valid
 * and unexpired. Odd: the rest is a policy body, written with
 * route_mx_sts_file_format and read back: accepted exactly when the body
 * itself parses (and is UTF-8) with a max_age that has not run out, with
 * the same fields.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/mtasts_parse.h"
#include "relay/route_mx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000

static void
fuzz_check_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MTASTS_ID_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[MTASTS_ID_MAX + 1];
	struct mtasts_policy p, q;
	const char *why, *errstr;
	time_t fetched;
	size_t line;

	if (size == 0 || size > 2 * MTASTS_POLICY_MAX)
		return 0;
	if ((data[0] & 1) == 0) {
		if (route_mx_sts_file_parse("example.org", (const char *)data + 1, size - 1,
		        FUZZ_NOW, id, &fetched, &p, &why) == 0) {
			fuzz_check_id(id);
			if (FUZZ_NOW >= fetched + (time_t)p.max_age || FUZZ_NOW < fetched - 86400)
				abort();
		}
		mtasts_policy_free(&p);
		return 0;
	}
	{
		const char *body = (const char *)data + 1;
		size_t len = size - 1;
		char *text =
		    route_mx_sts_file_format("example.org", "id1", FUZZ_NOW - 1, body, len);
		int want = mtasts_policy_parse(body, len, &q, &errstr, &line) == 0 &&
		    text != NULL && len <= MTASTS_POLICY_MAX && q.max_age > 1;
		int got = text != NULL &&
		    route_mx_sts_file_parse(
		        "example.org", text, strlen(text), FUZZ_NOW, id, &fetched, &p, &why) == 0;

		if (want != got)
			abort();
		if (got &&
		    (strcmp(id, "id1") != 0 || fetched != FUZZ_NOW - 1 ||
		        strcmp(p.mode, q.mode) != 0 || p.max_age != q.max_age || p.n_mx != q.n_mx))
			abort();
		if (text != NULL)
			mtasts_policy_free(&p); /* parsed into, accepted or not */
		mtasts_policy_free(&q);
		free(text);
	}
	return 0;
}

/* libFuzzer target: the DKIM key record parser and key decoding must never
 * crash, over-read or leak on any bytes; MTA-STS and TLS-RPT records and
 * policies (same kind of text from DNS and HTTPS) are fed the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dns/dkim_parse.h"
#include "dns/mtasts_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct dkim_key_record r;
	struct dkim_parse_error err;
	struct mtasts_policy pol;
	char id[MTASTS_ID_MAX + 1], *rua[TLSRPT_RUA_MAX];
	const char *errstr;
	size_t n = 0, line;

	if (dkim_key_parse(p, size, &r, &err) == 0)
		(void)dkim_key_bits(&r, &errstr);
	else if (err.off + err.len > size)
		abort();
	dkim_key_record_free(&r);
	(void)mtasts_record_parse(p, size, id, &errstr);
	(void)tlsrpt_record_parse(p, size, rua, &n, &errstr);
	for (size_t i = 0; i < n; i++)
		free(rua[i]);
	(void)mtasts_policy_parse(p, size, &pol, &errstr, &line);
	mtasts_policy_free(&pol);
	return 0;
}

/* libFuzzer target: the DMARC record parser (and the tag-list layer under
 * it) must never crash, over-read or leak on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dns/dmarc_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;
	struct dkim_parse_error err;
	const char *why = NULL;

	(void)dmarc_is_record((const char *)data, size);
	if (dmarc_is_near_record((const char *)data, size, &why) && why == NULL)
		abort();
	if (dmarc_parse((const char *)data, size, &r, &err) == -1 && err.off + err.len > size)
		abort();
	dmarc_record_free(&r);
	return 0;
}

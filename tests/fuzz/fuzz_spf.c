/* libFuzzer target: the SPF record parser must never crash, over-read or
 * leak on any bytes; an accepted record's terms are walked as well. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/spf_parse.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_record r;
	struct spf_parse_error err;

	/* data is exactly size bytes: the parser gets no NUL to lean on */
	if (spf_parse((const char *)data, size, &r, &err) == 0) {
		for (size_t i = 0; i < r.n; i++) {
			(void)spf_term_is_lookup(&r.terms[i]);
			(void)spf_term_has_macro(&r.terms[i]);
		}
	} else if (err.off + err.len > size) {
		abort();
	}
	spf_record_free(&r);
	(void)spf_macro_string_is_valid((const char *)data, size, true);
	(void)spf_domain_spec_is_valid((const char *)data, size);
	{
		const char *why = NULL;

		if (spf_is_near_record((const char *)data, size, &why) && why == NULL)
			abort();
	}
	return 0;
}

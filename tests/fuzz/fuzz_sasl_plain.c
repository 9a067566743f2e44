/* libFuzzer target: AUTH PLAIN decoding, from the base64 text on the wire
 * through the PLAIN mechanism step, as the session does it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "sasl/sasl.h"
#include "sasl/sasl_cram.h"
#include "sasl/sasl_mech.h"
#include "sasl/sasl_plain.h"
#include "sasl/sasl_scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf dec, out;
	struct sasl_exchange *x;
	const char *u, *p;
	size_t ul, pl;

	buf_init(&dec, 12288);
	buf_set_secret(&dec);
	buf_init(&out, 1024);
	/* raw bytes straight into the decoder */
	if (sasl_plain_decode((const char *)data, size, &u, &ul, &p, &pl) == 0) {
		if (ul == 0 || pl == 0 || memchr(p, '\0', pl) != NULL)
			abort();
	}
	/* and as base64 from the wire */
	if (base64_decode((const char *)data, size, &dec) == 0) {
		x = sasl_new(sasl_mech_find("PLAIN"));
		if (sasl_step(x, dec.data ? dec.data : "", dec.len, true, &out) ==
		        SASL_VERIFY_PLAIN &&
		    strlen(sasl_user(x)) == 0)
			abort();
		sasl_free(x);
		x = sasl_new(sasl_mech_find("LOGIN"));
		(void)sasl_step(x, dec.data ? dec.data : "", dec.len, true, &out);
		(void)sasl_step(x, dec.data ? dec.data : "", dec.len, true, &out);
		sasl_free(x);
	}
	buf_free(&dec);
	buf_free(&out);
	return 0;
}

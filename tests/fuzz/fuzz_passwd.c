/*
 * libFuzzer target: the passwd-file parser must never crash or leak on any
 * bytes, and what it accepts must re-serialise to text it parses again to
 * the same canonical form (rewrite is a fixed point).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd_file.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct passwd_file *pf, *again;
	struct buf a, b;

	pf = passwd_file_parse_text("/fuzz/passwd", (const char *)data, size, err, sizeof(err));
	if (pf == NULL)
		return 0;
	buf_init(&a, PASSWD_FILE_MAX);
	buf_init(&b, PASSWD_FILE_MAX);
	if (passwd_file_format(pf, &a) == 0) {
		again = passwd_file_parse_text("/fuzz/passwd", a.data, a.len, err, sizeof(err));
		if (again == NULL)
			abort();
		if (passwd_file_format(again, &b) != 0 || a.len != b.len ||
		    (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
			abort();
		passwd_file_free(again);
	}
	buf_free(&a);
	buf_free(&b);
	passwd_file_free(pf);
	return 0;
}

/* libFuzzer target: the config parser must never crash or leak on any text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	char *text = xmalloc(size + 1);
	struct conf *c;

	memcpy(text, data, size);
	text[size] = '\0';
	c = conf_parse_text("/fuzz/smtpgate.conf", text, err, sizeof(err));
	conf_free(c);
	free(text);
	return 0;
}

/*
 * libFuzzer target: smtp_cmd_parse on the input as one command line, then the
 * argument parser its verb selects. Results must be consistent; abort() when
 * not (ASan/UBSan catch the rest).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "smtp/smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_smtp_cmd_check_path(const struct smtp_path *p, int rc, bool smtputf8)
{
	size_t n = strnlen(p->addr, sizeof(p->addr));

	if (n > SMTP_ADDR_MAX || p->local_len > SMTP_LOCAL_MAX || p->local_len > n)
		abort();
	if (p->domain < p->addr || p->domain > p->addr + n)
		abort();
	if (rc != 0 && (n != 0 || p->non_ascii))
		abort();
	if (rc == 0 && p->non_ascii && !smtputf8)
		abort();
	if (rc == 0 && strlen(p->domain) > SMTP_DOMAIN_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)p->addr[i] < 33 && p->addr[i] != ' ') || p->addr[i] == 0x7f)
			abort(); /* no control characters, ever */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so any over-read is an ASan error */
	char *line = xmalloc(size > 0 ? size : 1);
	struct smtp_cmd cmd;
	enum smtp_reply_id err;
	struct smtp_path path;
	uint64_t bsize;
	bool last;
	char mech[SMTP_MECH_MAX + 1];
	const char *ir;
	size_t irlen;
	int rc;

	memcpy(line, data, size);
	if (smtp_cmd_parse(line, size, &cmd, &err) != 0) {
		if (err != SMTP_R_SYNTAX && err != SMTP_R_ARG_SYNTAX)
			abort();
		goto out;
	}
	if (cmd.arg < line || cmd.arg + cmd.arglen > line + size)
		abort();
	switch (cmd.verb) {
	case SMTP_VERB_MAIL:
		rc = smtp_parse_mail(cmd.arg, cmd.arglen, &path, &err);
		fuzz_smtp_cmd_check_path(&path, rc, path.smtputf8);
		break;
	case SMTP_VERB_RCPT:
		rc = smtp_parse_rcpt(cmd.arg, cmd.arglen, false, &path, &err);
		fuzz_smtp_cmd_check_path(&path, rc, false);
		rc = smtp_parse_rcpt(cmd.arg, cmd.arglen, true, &path, &err);
		fuzz_smtp_cmd_check_path(&path, rc, true);
		break;
	case SMTP_VERB_BDAT:
		rc = smtp_parse_bdat(cmd.arg, cmd.arglen, &bsize, &last, &err);
		if (rc != 0 && err != SMTP_R_ARG_SYNTAX)
			abort();
		break;
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		rc = smtp_parse_helo(cmd.arg, cmd.arglen, &err);
		if (rc != 0 && err != SMTP_R_ARG_SYNTAX)
			abort();
		break;
	case SMTP_VERB_AUTH:
		rc = smtp_parse_auth(cmd.arg, cmd.arglen, mech, &ir, &irlen, &err);
		if (rc == 0 && (strlen(mech) == 0 || strlen(mech) > SMTP_MECH_MAX))
			abort();
		if (rc == 0 && ir != NULL && (ir < cmd.arg || ir + irlen > cmd.arg + cmd.arglen))
			abort();
		if (rc != 0 && err != SMTP_R_ARG_SYNTAX)
			abort();
		break;
	default:
		break;
	}
out:
	free(line);
	return 0;
}

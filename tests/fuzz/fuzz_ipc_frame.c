/*
 * libFuzzer target: net/ipc_frame. The input is parsed whole and as each
 * of its prefixes: a prefix of a frame is MORE or BAD, never OK with other
 * values, and once a prefix is BAD every longer one is too. An OK frame's
 * payload is then read as the fields of each message shape the processes
 * use (u32s, strings, byte strings in any order the input's first byte
 * picks), and every read must stay inside the payload. abort() when not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/ipc_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_ipc_fields(const struct ipc_frame *f)
{
	struct ipc_reader r;
	char s[321];
	uint32_t v;
	const unsigned char *d;
	size_t dl;
	unsigned shape = f->len > 0 ? f->payload[0] : 0;

	ipc_reader_init(&r, f);
	for (int i = 0; i < 16 && !r.bad; i++) {
		switch ((shape >> (i % 4 * 2)) & 3) {
		case 0:
			(void)ipc_get_u32(&r, &v);
			break;
		case 1:
			if (ipc_get_str(&r, s, sizeof(s) - 1) == 0 && strlen(s) > sizeof(s) - 1)
				abort();
			break;
		default:
			if (ipc_get_bytes(&r, 4096, &d, &dl) == 0 &&
			    (d < f->payload || d + dl > f->payload + f->len || dl > 4096))
				abort();
			break;
		}
		if (r.pos > r.len)
			abort();
	}
	if (ipc_reader_done(&r) && r.pos != f->len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_frame whole, part;
	enum ipc_parse w = ipc_frame_parse(data, size, &whole);
	bool bad = false;

	for (size_t n = 0; n <= size && n <= IPC_FRAME_HDR + 64; n++) {
		enum ipc_parse p = ipc_frame_parse(data, n, &part);

		if (bad && p != IPC_PARSE_BAD)
			abort();
		if (p == IPC_PARSE_BAD)
			bad = true;
		if (p == IPC_PARSE_OK &&
		    (part.len > IPC_PAYLOAD_MAX || IPC_FRAME_HDR + part.len > n))
			abort();
	}
	if (bad && w != IPC_PARSE_BAD)
		abort();
	if (w != IPC_PARSE_OK)
		return 0;
	if (whole.type == 0 || whole.type > IPC_TYPE_MAX || IPC_FRAME_HDR + whole.len > size)
		abort();
	fuzz_ipc_fields(&whole);
	return 0;
}

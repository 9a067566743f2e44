/*
 * libFuzzer target: net/proxy_proto fed whole, one byte at a time and in
 * chunks of 7; the outcomes (status, bytes consumed, version, command,
 * addresses, error) must be identical. A DONE header must hold the bounds
 * the parser promises (v1 at most 107 bytes ending CRLF, v2 at most
 * 16 + PROXY_PROTO_V2_LEN_MAX), and an address only for PROXY. abort() when
 * not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_proxy_out {
	enum proxy_proto_status st;
	size_t off;
	struct proxy_proto_result r;
	const char *errstr;
};

static void
fuzz_proxy_run(const uint8_t *data, size_t size, size_t step, struct fuzz_proxy_out *o)
{
	struct proxy_proto p;

	memset(o, 0, sizeof(*o));
	proxy_proto_init(&p);
	o->st = PROXY_PROTO_NEED_MORE;
	while (o->off < size) {
		size_t n = size - o->off, used = 0;

		if (step > 0 && n > step)
			n = step;
		o->st = proxy_proto_feed(&p, data + o->off, n, &used);
		if (used > n || (o->st == PROXY_PROTO_NEED_MORE && used != n))
			abort();
		o->off += used;
		if (o->st != PROXY_PROTO_NEED_MORE)
			break;
	}
	o->errstr = p.errstr;
	if (o->st == PROXY_PROTO_DONE)
		o->r = p.result; /* p was zeroed by init: padding compares equal */
	if ((o->st == PROXY_PROTO_ERROR) != (o->errstr != NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_proxy_out a, b, c;

	fuzz_proxy_run(data, size, 0, &a);
	fuzz_proxy_run(data, size, 1, &b);
	fuzz_proxy_run(data, size, 7, &c);
	if (a.st != b.st || a.off != b.off || a.errstr != b.errstr ||
	    memcmp(&a.r, &b.r, sizeof(a.r)) != 0 || a.st != c.st || a.off != c.off ||
	    a.errstr != c.errstr || memcmp(&a.r, &c.r, sizeof(a.r)) != 0)
		abort();
	if (a.st != PROXY_PROTO_DONE)
		return 0;
	if (a.r.len != a.off)
		abort();
	if (a.r.version == 1 &&
	    (a.off > PROXY_PROTO_V1_LINE_MAX || a.off < 15 || memcmp(data, "PROXY ", 6) != 0 ||
	        data[a.off - 2] != '\r' || data[a.off - 1] != '\n'))
		abort();
	if (a.r.version == 2 &&
	    (a.off < PROXY_PROTO_V2_FIXED ||
	        a.off > PROXY_PROTO_V2_FIXED + PROXY_PROTO_V2_LEN_MAX ||
	        a.off != PROXY_PROTO_V2_FIXED + ((size_t)data[14] << 8 | data[15])))
		abort();
	if ((a.r.command == PROXY_PROTO_PROXY) != (a.r.family == AF_INET || a.r.family == AF_INET6))
		abort();
	if (a.r.command == PROXY_PROTO_PROXY &&
	    (a.r.src.ss_family != a.r.family || a.r.dst.ss_family != a.r.family))
		abort();
	return 0;
}

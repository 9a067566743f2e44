/*
 * Unit tests for net/proxy_proto: every case is fed whole, one byte at a
 * time, and split at every point; the outcome (status, version, command,
 * addresses, ports, bytes consumed, header length, error) must be the same
 * each way. Bytes after a header (SMTP, a TLS ClientHello) are never taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "net/proxy_proto.h"

#define S(x) x, sizeof(x) - 1

/* spec 2.2 */
#define SIG "\r\n\r\n\0\r\nQUIT\n"

struct outcome {
	enum proxy_proto_status st;
	size_t consumed;
	int version;
	enum proxy_proto_command command;
	int family;
	char src[64], dst[64];
	unsigned sport, dport;
	size_t len;
	const char *errstr;
};

static void
format_sa(const struct sockaddr_storage *ss, char *out, size_t outlen, unsigned *port_r)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, out, (socklen_t)outlen);
		*port_r = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, out, (socklen_t)outlen);
		*port_r = ntohs(s->sin6_port);
	} else {
		snprintf(out, outlen, "-");
		*port_r = 0;
	}
}

/* Feeds in chunks of at most step bytes (0: all at once), first split at
 * split (0: none), until DONE or ERROR. */
static void
run(const char *in, size_t len, size_t split, size_t step, struct outcome *o)
{
	struct proxy_proto p;
	size_t off = 0;

	memset(o, 0, sizeof(*o));
	proxy_proto_init(&p);
	o->st = PROXY_PROTO_NEED_MORE;
	while (off < len) {
		size_t n = len - off, used = 0;

		if (split > 0 && off < split)
			n = split - off;
		else if (step > 0 && n > step)
			n = step;
		o->st = proxy_proto_feed(&p, in + off, n, &used);
		assert_true(used <= n);
		off += used;
		if (o->st != PROXY_PROTO_NEED_MORE)
			break;
		assert_int_equal(used, n);
	}
	o->consumed = off;
	o->errstr = p.errstr;
	if (o->st == PROXY_PROTO_DONE) {
		o->version = p.result.version;
		o->command = p.result.command;
		o->family = p.result.family;
		o->len = p.result.len;
		format_sa(&p.result.src, o->src, sizeof(o->src), &o->sport);
		format_sa(&p.result.dst, o->dst, sizeof(o->dst), &o->dport);
		/* DONE stays DONE and takes nothing more */
		{
			size_t used = 99;

			assert_int_equal(proxy_proto_feed(&p, "x", 1, &used), PROXY_PROTO_DONE);
			assert_int_equal(used, 0);
		}
	}
}

struct pcase {
	const char *in;
	size_t len;
	enum proxy_proto_status st;
	int version;
	enum proxy_proto_command command;
	int family;
	const char *src;
	unsigned sport;
	const char *dst;
	unsigned dport;
	size_t consumed; /* 0: all of it */
	const char *err; /* a substring of errstr, for ERROR */
};

#define OK4(in, src, sp, dst, dp, used)                                                            \
	{                                                                                          \
		S(in), PROXY_PROTO_DONE, 1, PROXY_PROTO_PROXY, AF_INET, src, sp, dst, dp, used,    \
		    NULL                                                                           \
	}
#define OK6(in, src, sp, dst, dp, used)                                                            \
	{                                                                                          \
		S(in), PROXY_PROTO_DONE, 1, PROXY_PROTO_PROXY, AF_INET6, src, sp, dst, dp, used,   \
		    NULL                                                                           \
	}
#define BAD(in, err)                                                                               \
	{                                                                                          \
		S(in), PROXY_PROTO_ERROR, 0, 0, 0, "-", 0, "-", 0, 0, err                          \
	}
#define MORE(in)                                                                                   \
	{                                                                                          \
		S(in), PROXY_PROTO_NEED_MORE, 0, 0, 0, "-", 0, "-", 0, 0, NULL                     \
	}

static const struct pcase cases[] = {
    /* v1 */
    OK4("PROXY TCP4 192.0.2.7 198.51.100.1 56324 587\r\n", "192.0.2.7", 56324, "198.51.100.1", 587,
        0),
    OK4("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "255.255.255.255", 65535,
        "255.255.255.255", 65535, 0),
    OK4("PROXY TCP4 0.0.0.0 10.0.0.1 0 25\r\n", "0.0.0.0", 0, "10.0.0.1", 25, 0),
    /* what follows the header is left to the caller */
    OK4("PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\nEHLO x\r\n", "192.0.2.7", 1, "198.51.100.1", 2,
        39),
    OK4("PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n\x16\x03\x01", "192.0.2.7", 1, "198.51.100.1", 2,
        39),
    OK6("PROXY TCP6 2001:db8::7 2001:db8::1 40000 465\r\n", "2001:db8::7", 40000, "2001:db8::1",
        465, 0),
    OK6("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "65535 65535\r\n",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        65535, 0),
    OK6("PROXY TCP6 2001:DB8:0:0:0:0:0:7 ::1 1 2\r\n", "2001:db8::7", 1, "::1", 2, 0),
    OK6("PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n", "::ffff:192.0.2.7", 1, "::1", 2, 0),
    {S("PROXY UNKNOWN\r\n"), PROXY_PROTO_DONE, 1, PROXY_PROTO_UNKNOWN, AF_UNSPEC, "-", 0, "-", 0, 0,
        NULL},
    {S("PROXY UNKNOWN ffff:f::f:ffff ffff:ffff 65535 65535\r\nQUIT\r\n"), PROXY_PROTO_DONE, 1,
        PROXY_PROTO_UNKNOWN, AF_UNSPEC, "-", 0, "-", 0, 52, NULL},
    /* the longest line the spec allows: 107 bytes, CRLF included */
    {S("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
       "ffff 65535 65535\r\n"),
        PROXY_PROTO_DONE, 1, PROXY_PROTO_UNKNOWN, AF_UNSPEC, "-", 0, "-", 0, 0, NULL},
    BAD("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
        "ffff 65535 655355\r\n",
        "107"),
    BAD("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
        "ffff 65535 6553555\r\n",
        "107"),
    MORE("PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r"),
    MORE("PROXY TCP4 192.0.2.7 198.51.100.1 1 2"),
    MORE("PRO"),
    MORE("\r\n\r\n"),
    BAD("EHLO client.example\r\n", "not a PROXY"),
    BAD("\x16\x03\x01\x00\xa5", "not a PROXY"),
    BAD("PROXI TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY "),
    BAD("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "not a PROXY"),
    BAD("PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "protocol"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "LF without CR"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r\n", "CR without LF"),
    BAD("PROXY TCP4 1.2.3.4\r 1.2.3.4 1 2\r\n", "CR without LF"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", "SOURCE"),
    BAD("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", "SOURCE"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "SOURCE"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "SOURCE"),
    BAD("PROXY TCP4\r\n", "protocol"),
    BAD("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "protocol"),
    BAD("PROXY UNKNOWNX\r\n", "protocol"),
    BAD("PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n", "protocol"),
    BAD("PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP4 1..3.4 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP4 1.2.3.1000 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n", "TCP4 address"),
    BAD("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "TCP6 address"),
    BAD("PROXY TCP6 2001:db8:::1 ::1 1 2\r\n", "TCP6 address"),
    BAD("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "TCP6 address"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "port"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 00\r\n", "port"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "port"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 100000 2\r\n", "port"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "port"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n", "port"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 \r\n", "SOURCE"),
    BAD("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\0\r\n", "printable"),
    BAD("PROXY UNKNOWN \xff\r\n", "printable"),
    BAD("PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n", "printable"),

    /* v2: TCP over IPv4, 192.0.2.7:56324 -> 198.51.100.1:587 */
    {S(SIG "\x21\x11\x00\x0c"
           "\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b"),
        PROXY_PROTO_DONE, 2, PROXY_PROTO_PROXY, AF_INET, "192.0.2.7", 56324, "198.51.100.1", 587, 0,
        NULL},
    /* followed by a ClientHello: 28 bytes are the header's */
    {S(SIG "\x21\x11\x00\x0c"
           "\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b\x16\x03\x01"),
        PROXY_PROTO_DONE, 2, PROXY_PROTO_PROXY, AF_INET, "192.0.2.7", 56324, "198.51.100.1", 587,
        28, NULL},
    /* TCP over IPv6, 2001:db8::7:1 -> 2001:db8::1:465 */
    {S(SIG "\x21\x21\x00\x24"
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
           "\x00\x01\x01\xd1"),
        PROXY_PROTO_DONE, 2, PROXY_PROTO_PROXY, AF_INET6, "2001:db8::7", 1, "2001:db8::1", 465, 0,
        NULL},
    /* TLVs after the addresses: ALPN "smtp", an empty NOOP, CRC32C */
    {S(SIG "\x21\x11\x00\x1d"
           "\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b"
           "\x01\x00\x04smtp"
           "\x04\x00\x00"
           "\x03\x00\x04\x01\x02\x03\x04"
           "EHLO"),
        PROXY_PROTO_DONE, 2, PROXY_PROTO_PROXY, AF_INET, "192.0.2.7", 56324, "198.51.100.1", 587,
        45, NULL},
    /* LOCAL (a health check): the block is skipped whatever it holds */
    {S(SIG "\x20\x00\x00\x00"), PROXY_PROTO_DONE, 2, PROXY_PROTO_LOCAL, AF_UNSPEC, "-", 0, "-", 0,
        0, NULL},
    {S(SIG "\x20\x11\x00\x05"
           "\x01\x02\x03\x04\x05QUIT"),
        PROXY_PROTO_DONE, 2, PROXY_PROTO_LOCAL, AF_UNSPEC, "-", 0, "-", 0, 21, NULL},
    {S(SIG "\x20\x31\x00\x00"), PROXY_PROTO_DONE, 2, PROXY_PROTO_LOCAL, AF_UNSPEC, "-", 0, "-", 0,
        0, NULL},
    MORE(SIG "\x21\x11\x00\x0c\xc0\x00\x02"),
    MORE(SIG "\x21\x11\x00"),
    MORE(SIG "\x21\x11\x00\x0f\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b\x01\x00"),
    BAD("\r\n\r\n\0\r\nQUIT\r", "signature"),
    BAD("\r\n\r\n\x01", "signature"),
    BAD("\r\r", "signature"),
    BAD(SIG "\x11\x11\x00\x0c", "version"),
    BAD(SIG "\x31\x11\x00\x0c", "version"),
    BAD(SIG "\x22\x11\x00\x0c", "command"),
    BAD(SIG "\x2f\x11\x00\x0c", "command"),
    BAD(SIG "\x21\x41\x00\x0c", "undefined"),
    BAD(SIG "\x21\x13\x00\x0c", "undefined"),
    BAD(SIG "\x20\x13\x00\x00", "undefined"),
    /* PROXY needs TCP over INET or INET6 */
    BAD(SIG "\x21\x00\x00\x00", "family"),
    BAD(SIG "\x21\x12\x00\x0c", "family"),
    BAD(SIG "\x21\x31\x00\xd8", "family"),
    BAD(SIG "\x21\x10\x00\x0c", "family"),
    BAD(SIG "\x21\x11\x00\x0b", "shorter"),
    BAD(SIG "\x21\x21\x00\x0c", "shorter"),
    BAD(SIG "\x21\x11\x10\x01", "4096"),
    BAD(SIG "\x20\x00\xff\xff", "4096"),
    /* TLVs must tile the rest */
    BAD(SIG "\x21\x11\x00\x0e"
            "\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b\x01\x00",
        "cut off"),
    BAD(SIG "\x21\x11\x00\x10"
            "\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b\x01\x00\x02x",
        "runs past"),
    BAD(SIG "\x21\x11\x00\x0d"
            "\xc0\x00\x02\x07\xc6\x33\x64\x01\xdc\x04\x02\x4b\x01",
        "cut off"),
};

static void
check_same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->st, b->st);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->command, b->command);
	assert_int_equal(a->family, b->family);
	assert_string_equal(a->src, b->src);
	assert_string_equal(a->dst, b->dst);
	assert_int_equal(a->sport, b->sport);
	assert_int_equal(a->dport, b->dport);
	assert_int_equal(a->len, b->len);
	assert_ptr_equal(a->errstr, b->errstr);
}

static void
test_proxy_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		struct outcome whole, one, sp;

		run(c->in, c->len, 0, 0, &whole);
		if (whole.st != c->st ||
		    (c->st == PROXY_PROTO_DONE &&
		        (whole.version != c->version || whole.command != c->command ||
		            whole.family != c->family || strcmp(whole.src, c->src) != 0 ||
		            strcmp(whole.dst, c->dst) != 0 || whole.sport != c->sport ||
		            whole.dport != c->dport)) ||
		    (c->st == PROXY_PROTO_ERROR &&
		        (whole.errstr == NULL || strstr(whole.errstr, c->err) == NULL)))
			fail_msg("case %zu: st=%d v=%d cmd=%d fam=%d %s:%u -> %s:%u err=%s", i,
			    whole.st, whole.version, whole.command, whole.family, whole.src,
			    whole.sport, whole.dst, whole.dport, whole.errstr ? whole.errstr : "");
		if (c->st == PROXY_PROTO_DONE) {
			size_t want = c->consumed ? c->consumed : c->len;

			assert_int_equal(whole.consumed, want);
			assert_int_equal(whole.len, want);
		} else if (c->st == PROXY_PROTO_NEED_MORE) {
			assert_int_equal(whole.consumed, c->len);
		} else {
			assert_true(whole.consumed < c->len);
		}
		run(c->in, c->len, 0, 1, &one);
		check_same(&whole, &one);
		for (size_t s = 1; s < c->len; s++) {
			run(c->in, c->len, s, 0, &sp);
			check_same(&whole, &sp);
		}
	}
}

/* An error is reported at the offending byte, not later: the balancer (or
 * a client that is not one) sees the close as soon as possible. */
static void
test_proxy_error_position(void **state)
{
	struct outcome o;

	(void)state;
	run(S("EHLO x\r\n"), 0, 0, &o);
	assert_int_equal(o.st, PROXY_PROTO_ERROR);
	assert_int_equal(o.consumed, 0);
	run(S("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\nmore"), 0, 0, &o);
	assert_int_equal(o.st, PROXY_PROTO_ERROR);
	assert_int_equal(o.consumed, 30);
	run(S(SIG "\x31"), 0, 0, &o);
	assert_int_equal(o.consumed, 12);
}

/* A v1 line without CRLF is refused at its 108th byte, whatever it holds. */
static void
test_proxy_v1_bound(void **state)
{
	char line[300];
	struct outcome o;

	(void)state;
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'a', sizeof(line) - 14);
	run(line, sizeof(line), 0, 0, &o);
	assert_int_equal(o.st, PROXY_PROTO_ERROR);
	assert_int_equal(o.consumed, PROXY_PROTO_V1_LINE_MAX);
	run(line, sizeof(line), 0, 1, &o);
	assert_int_equal(o.consumed, PROXY_PROTO_V1_LINE_MAX);
}

/* The largest v2 header accepted: 4096 bytes of one TLV after the fixed
 * part; the parser keeps none of it. */
static void
test_proxy_v2_bound(void **state)
{
	static unsigned char h[PROXY_PROTO_V2_FIXED + PROXY_PROTO_V2_LEN_MAX + 4];
	size_t tl = PROXY_PROTO_V2_LEN_MAX - 12 - 3;
	struct outcome o;

	(void)state;
	memcpy(h, SIG, 12);
	h[12] = 0x21;
	h[13] = 0x11;
	h[14] = PROXY_PROTO_V2_LEN_MAX >> 8;
	h[15] = PROXY_PROTO_V2_LEN_MAX & 0xff;
	memcpy(h + 16, "\x7f\x00\x00\x01\x7f\x00\x00\x02\x00\x19\x00\x1a", 12);
	h[28] = 0xe0; /* PP2_TYPE_MIN_CUSTOM */
	h[29] = (unsigned char)(tl >> 8);
	h[30] = (unsigned char)(tl & 0xff);
	memcpy(h + PROXY_PROTO_V2_FIXED + PROXY_PROTO_V2_LEN_MAX, "EHLO", 4);
	run((const char *)h, sizeof(h), 0, 0, &o);
	assert_int_equal(o.st, PROXY_PROTO_DONE);
	assert_int_equal(o.consumed, PROXY_PROTO_V2_FIXED + PROXY_PROTO_V2_LEN_MAX);
	assert_string_equal(o.src, "127.0.0.1");
	assert_int_equal(o.sport, 25);
	assert_int_equal(o.dport, 26);
	run((const char *)h, sizeof(h), 0, 7, &o);
	assert_int_equal(o.st, PROXY_PROTO_DONE);
	assert_int_equal(o.consumed, PROXY_PROTO_V2_FIXED + PROXY_PROTO_V2_LEN_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_proxy_cases),
	    cmocka_unit_test(test_proxy_error_position),
	    cmocka_unit_test(test_proxy_v1_bound),
	    cmocka_unit_test(test_proxy_v2_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

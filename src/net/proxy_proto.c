/*
 * proxy_proto: the PROXY protocol header parser (proxy_proto.h). Pure.
 *
 * States: START (the first byte picks the version), V1 (the line is
 * collected in buf, checked byte by byte for the "PROXY " prefix, the
 * length bound, lone CR or LF and non-ASCII, and decoded once its CRLF is
 * in, as spec 2.1 asks), V2_FIXED (the 16 fixed bytes, each checked as it
 * arrives), V2_ADDR (the address block of a PROXY command, kept in buf
 * after the fixed part), V2_TLV (the TLVs after it, skipped but framed),
 * V2_SKIP (the block of a LOCAL command, ignored as spec 2.2 says), then
 * DONE or ERROR, where the parser stays.
 *
 * The result does not depend on how the input is split: every decision is
 * made on one byte and the state, never on the size of a call.
 */
#include "net/proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

enum {
	PROXY_PROTO_ST_START,
	PROXY_PROTO_ST_V1,
	PROXY_PROTO_ST_V2_FIXED,
	PROXY_PROTO_ST_V2_ADDR,
	PROXY_PROTO_ST_V2_TLV,
	PROXY_PROTO_ST_V2_SKIP,
	PROXY_PROTO_ST_DONE,
	PROXY_PROTO_ST_ERROR,
};

/* spec 2.2: the v2 signature, a NUL at the 5th byte */
static const unsigned char proxy_proto_v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define PROXY_PROTO_V1_PREFIX "PROXY "
#define PROXY_PROTO_V2_CMD_LOCAL 0x0
#define PROXY_PROTO_V2_CMD_PROXY 0x1
#define PROXY_PROTO_V2_TCP4 0x11 /* AF_INET, STREAM */
#define PROXY_PROTO_V2_TCP6 0x21 /* AF_INET6, STREAM */
#define PROXY_PROTO_TLV_HEAD 3 /* type, length (2 bytes, network order) */

void
proxy_proto_init(struct proxy_proto *p)
{
	memset(p, 0, sizeof(*p));
	p->state = PROXY_PROTO_ST_START;
}

const char *
proxy_proto_command_name(enum proxy_proto_command c)
{
	switch (c) {
	case PROXY_PROTO_LOCAL:
		return "LOCAL";
	case PROXY_PROTO_PROXY:
		return "PROXY";
	case PROXY_PROTO_UNKNOWN:
		return "UNKNOWN";
	}
	return "?";
}

static enum proxy_proto_status
proxy_proto_fail(struct proxy_proto *p, const char *why)
{
	p->state = PROXY_PROTO_ST_ERROR;
	p->errstr = why;
	return PROXY_PROTO_ERROR;
}

static enum proxy_proto_status
proxy_proto_done(struct proxy_proto *p)
{
	p->state = PROXY_PROTO_ST_DONE;
	p->result.len = p->total;
	return PROXY_PROTO_DONE;
}

/* spec 2.1: "exactly 4 integers in the range [0..255] ... separated by
 * exactly one dot"; no leading zeroes. */
static int
proxy_proto_parse_v4(const char *s, struct in_addr *a_r)
{
	unsigned char b[4];

	for (int i = 0; i < 4; i++) {
		unsigned v = 0, n = 0;

		for (; *s >= '0' && *s <= '9'; s++, n++) {
			if (n == 3 || (n == 1 && v == 0))
				return -1; /* too many digits, or a leading zero */
			v = v * 10 + (unsigned)(*s - '0');
		}
		if (n == 0 || v > 255)
			return -1;
		b[i] = (unsigned char)v;
		if (i < 3 && *s++ != '.')
			return -1;
	}
	if (*s != '\0')
		return -1;
	memcpy(a_r, b, 4);
	return 0;
}

/* spec 2.1: hexadecimal groups and colons, one "::" at most; inet_pton is
 * the judge (it also reads an IPv4-mapped tail, as inet_ntop writes it). */
static int
proxy_proto_parse_v6(const char *s, struct in6_addr *a_r)
{
	for (const char *c = s; *c != '\0'; c++) {
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
		        (*c >= 'A' && *c <= 'F') || *c == ':' || *c == '.'))
			return -1;
	}
	return inet_pton(AF_INET6, s, a_r) == 1 ? 0 : -1;
}

/* spec 2.1: a decimal port in [0..65535] without leading zeroes. */
static int
proxy_proto_parse_port(const char *s, uint16_t *port_r)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		if (n == 5 || (n == 1 && v == 0))
			return -1;
		v = v * 10 + (unsigned long)(s[n] - '0');
	}
	if (n == 0 || s[n] != '\0' || v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

static void
proxy_proto_set_v4(struct sockaddr_storage *ss, const void *addr, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	sin->sin_port = htons(port);
}

static void
proxy_proto_set_v6(struct sockaddr_storage *ss, const void *addr, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	sin6->sin6_port = htons(port);
}

/* Decodes the complete v1 line in p->buf (CRLF included). */
static enum proxy_proto_status
proxy_proto_v1_line(struct proxy_proto *p)
{
	struct proxy_proto_result *r = &p->result;
	char line[PROXY_PROTO_V1_LINE_MAX + 1], *f[4], *c;
	size_t n = p->blen - 2 - (sizeof(PROXY_PROTO_V1_PREFIX) - 1);
	uint16_t sport, dport;
	int family, nf = 0;

	memcpy(line, p->buf + sizeof(PROXY_PROTO_V1_PREFIX) - 1, n);
	line[n] = '\0';
	r->version = 1;
	if (strncmp(line, "UNKNOWN", 7) == 0 && (line[7] == '\0' || line[7] == ' ')) {
		/* spec 2.1: whatever follows UNKNOWN is ignored */
		r->command = PROXY_PROTO_UNKNOWN;
		r->family = AF_UNSPEC;
		return proxy_proto_done(p);
	}
	if (strncmp(line, "TCP4 ", 5) == 0)
		family = AF_INET;
	else if (strncmp(line, "TCP6 ", 5) == 0)
		family = AF_INET6;
	else
		return proxy_proto_fail(p, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	/* four fields, exactly one space between them */
	for (c = line + 5; c != NULL && nf < 4; nf++) {
		f[nf] = c;
		c = strchr(c, ' ');
		if (c != NULL)
			*c++ = '\0';
		if (f[nf][0] == '\0')
			break;
	}
	if (nf != 4 || c != NULL)
		return proxy_proto_fail(p, "v1: expected SOURCE DESTINATION SPORT DPORT");
	if (proxy_proto_parse_port(f[2], &sport) == -1 ||
	    proxy_proto_parse_port(f[3], &dport) == -1)
		return proxy_proto_fail(
		    p, "v1: a port is not a number in 0..65535 without leading zeros");
	if (family == AF_INET) {
		struct in_addr s4, d4;

		if (proxy_proto_parse_v4(f[0], &s4) == -1 || proxy_proto_parse_v4(f[1], &d4) == -1)
			return proxy_proto_fail(p, "v1: an address is not a TCP4 address");
		proxy_proto_set_v4(&r->src, &s4, sport);
		proxy_proto_set_v4(&r->dst, &d4, dport);
	} else {
		struct in6_addr s6, d6;

		if (proxy_proto_parse_v6(f[0], &s6) == -1 || proxy_proto_parse_v6(f[1], &d6) == -1)
			return proxy_proto_fail(p, "v1: an address is not a TCP6 address");
		proxy_proto_set_v6(&r->src, &s6, sport);
		proxy_proto_set_v6(&r->dst, &d6, dport);
	}
	r->command = PROXY_PROTO_PROXY;
	r->family = family;
	return proxy_proto_done(p);
}

static enum proxy_proto_status
proxy_proto_v1_byte(struct proxy_proto *p, unsigned char c)
{
	size_t i = p->blen;
	bool cr = i > 0 && p->buf[i - 1] == '\r';

	if (i < sizeof(PROXY_PROTO_V1_PREFIX) - 1) {
		if (c != (unsigned char)PROXY_PROTO_V1_PREFIX[i])
			return proxy_proto_fail(p, "v1: the line does not start with \"PROXY \"");
	} else if (c == '\n') {
		if (!cr)
			return proxy_proto_fail(p, "v1: LF without CR");
	} else if (cr) {
		/* spec 2.1: a lone CR or LF must not end the line */
		return proxy_proto_fail(p, "v1: CR without LF");
	} else if (c != '\r' && (c < 0x20 || c > 0x7e)) {
		return proxy_proto_fail(p, "v1: a byte that is not printable US-ASCII");
	}
	if (i >= PROXY_PROTO_V1_LINE_MAX)
		return proxy_proto_fail(p, "v1: no CRLF within 107 bytes");
	p->buf[p->blen++] = c;
	if (c == '\n')
		return proxy_proto_v1_line(p);
	return PROXY_PROTO_NEED_MORE;
}

/* The 16 fixed bytes are in: spec 2.2 checks that need the length. */
static enum proxy_proto_status
proxy_proto_v2_fixed_end(struct proxy_proto *p)
{
	unsigned cmd = p->buf[12] & 0x0f, fam = p->buf[13];

	p->v2_len = (size_t)p->buf[14] << 8 | p->buf[15];
	p->v2_left = p->v2_len;
	p->result.version = 2;
	if (p->v2_len > PROXY_PROTO_V2_LEN_MAX)
		return proxy_proto_fail(
		    p, "v2: header longer than 4096 bytes after the fixed part");
	if (cmd == PROXY_PROTO_V2_CMD_LOCAL) {
		/* spec 2.2: use the real endpoints and skip the whole block,
		 * family included */
		p->result.command = PROXY_PROTO_LOCAL;
		p->result.family = AF_UNSPEC;
		p->state = PROXY_PROTO_ST_V2_SKIP;
		return p->v2_left == 0 ? proxy_proto_done(p) : PROXY_PROTO_NEED_MORE;
	}
	if (fam == PROXY_PROTO_V2_TCP4)
		p->v2_addr = 2 * 4 + 2 * 2;
	else if (fam == PROXY_PROTO_V2_TCP6)
		p->v2_addr = 2 * 16 + 2 * 2;
	else
		return proxy_proto_fail(
		    p, "v2: PROXY over a family other than TCP/IPv4 or TCP/IPv6");
	if (p->v2_len < p->v2_addr)
		return proxy_proto_fail(p, "v2: length shorter than the address block");
	p->result.command = PROXY_PROTO_PROXY;
	p->state = PROXY_PROTO_ST_V2_ADDR;
	return PROXY_PROTO_NEED_MORE;
}

static enum proxy_proto_status
proxy_proto_v2_fixed_byte(struct proxy_proto *p, unsigned char c)
{
	size_t i = p->blen;

	if (i < sizeof(proxy_proto_v2_sig) && c != proxy_proto_v2_sig[i])
		return proxy_proto_fail(p, "v2: bad signature");
	if (i == 12) {
		if ((c >> 4) != 2)
			return proxy_proto_fail(p, "v2: version is not 2");
		if ((c & 0x0f) != PROXY_PROTO_V2_CMD_LOCAL &&
		    (c & 0x0f) != PROXY_PROTO_V2_CMD_PROXY)
			return proxy_proto_fail(p, "v2: command is not LOCAL or PROXY");
	}
	/* spec 2.2: families 0..3 and transports 0..2; others are invalid */
	if (i == 13 && ((c >> 4) > 3 || (c & 0x0f) > 2))
		return proxy_proto_fail(p, "v2: undefined address family or transport");
	p->buf[p->blen++] = c;
	if (p->blen == PROXY_PROTO_V2_FIXED)
		return proxy_proto_v2_fixed_end(p);
	return PROXY_PROTO_NEED_MORE;
}

/* The address block of a PROXY command is in buf after the fixed part. */
static enum proxy_proto_status
proxy_proto_v2_addr_end(struct proxy_proto *p)
{
	struct proxy_proto_result *r = &p->result;
	const unsigned char *a = p->buf + PROXY_PROTO_V2_FIXED;
	size_t al = p->v2_addr == 12 ? 4 : 16;
	uint16_t sport = (uint16_t)(a[2 * al] << 8 | a[2 * al + 1]);
	uint16_t dport = (uint16_t)(a[2 * al + 2] << 8 | a[2 * al + 3]);

	if (al == 4) {
		r->family = AF_INET;
		proxy_proto_set_v4(&r->src, a, sport);
		proxy_proto_set_v4(&r->dst, a + 4, dport);
	} else {
		r->family = AF_INET6;
		proxy_proto_set_v6(&r->src, a, sport);
		proxy_proto_set_v6(&r->dst, a + 16, dport);
	}
	if (p->v2_left == 0)
		return proxy_proto_done(p);
	p->state = PROXY_PROTO_ST_V2_TLV;
	return PROXY_PROTO_NEED_MORE;
}

/* spec 2.2.x: TLVs (type, 2-byte length, value) fill the rest exactly. */
static enum proxy_proto_status
proxy_proto_v2_tlv_byte(struct proxy_proto *p, unsigned char c)
{
	p->v2_left--;
	if (p->tlv_head == 0 && p->tlv_left > 0) {
		p->tlv_left--;
	} else {
		/* byte tlv_head of a TLV's head: the type, then the length */
		if (p->tlv_head > 0)
			p->tlv_left = p->tlv_left << 8 | c;
		if (++p->tlv_head == PROXY_PROTO_TLV_HEAD) {
			p->tlv_head = 0;
			if (p->tlv_left > p->v2_left)
				return proxy_proto_fail(p, "v2: a TLV runs past the header");
		}
	}
	if (p->v2_left > 0)
		return PROXY_PROTO_NEED_MORE;
	if (p->tlv_head != 0)
		return proxy_proto_fail(p, "v2: a TLV head is cut off by the header's end");
	return proxy_proto_done(p);
}

static enum proxy_proto_status
proxy_proto_byte(struct proxy_proto *p, unsigned char c)
{
	switch (p->state) {
	case PROXY_PROTO_ST_START:
		/* spec 2.2 "identifying the protocol version" */
		if (c == 'P')
			p->state = PROXY_PROTO_ST_V1;
		else if (c == proxy_proto_v2_sig[0])
			p->state = PROXY_PROTO_ST_V2_FIXED;
		else
			return proxy_proto_fail(p, "not a PROXY protocol header");
		return proxy_proto_byte(p, c);
	case PROXY_PROTO_ST_V1:
		return proxy_proto_v1_byte(p, c);
	case PROXY_PROTO_ST_V2_FIXED:
		return proxy_proto_v2_fixed_byte(p, c);
	case PROXY_PROTO_ST_V2_ADDR:
		p->buf[p->blen++] = c;
		p->v2_left--;
		if (p->blen == PROXY_PROTO_V2_FIXED + p->v2_addr)
			return proxy_proto_v2_addr_end(p);
		return PROXY_PROTO_NEED_MORE;
	case PROXY_PROTO_ST_V2_TLV:
		return proxy_proto_v2_tlv_byte(p, c);
	case PROXY_PROTO_ST_V2_SKIP:
		return --p->v2_left == 0 ? proxy_proto_done(p) : PROXY_PROTO_NEED_MORE;
	case PROXY_PROTO_ST_DONE:
		return PROXY_PROTO_DONE;
	}
	return PROXY_PROTO_ERROR;
}

enum proxy_proto_status
proxy_proto_feed(struct proxy_proto *p, const void *data, size_t len, size_t *used_r)
{
	const unsigned char *d = data;
	size_t i;

	*used_r = 0;
	if (p->state == PROXY_PROTO_ST_DONE)
		return PROXY_PROTO_DONE;
	if (p->state == PROXY_PROTO_ST_ERROR)
		return PROXY_PROTO_ERROR;
	for (i = 0; i < len; i++) {
		enum proxy_proto_status st;

		/* counted before the byte is judged, so result.len includes it */
		p->total++;
		st = proxy_proto_byte(p, d[i]);
		if (st == PROXY_PROTO_ERROR) {
			p->total--;
			*used_r = i;
			return st;
		}
		if (st == PROXY_PROTO_DONE) {
			*used_r = i + 1;
			return st;
		}
	}
	*used_r = len;
	return PROXY_PROTO_NEED_MORE;
}

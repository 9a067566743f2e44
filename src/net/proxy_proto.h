/*
 * proxy_proto: a pure, incremental parser of the HAProxy PROXY protocol
 * header (haproxy.org/download/2.9/doc/proxy-protocol.txt, "the spec"),
 * versions 1 (text) and 2 (binary), as a load balancer sends it before the
 * first byte of the relayed connection. No I/O: bytes in, a decision out.
 *
 * Bytes go in as they arrive, in any split. Until the header is complete
 * every byte fed belongs to it (PROXY_PROTO_NEED_MORE consumes all of
 * them); DONE says how many bytes of the last call were the header's end,
 * so the caller never takes a byte that follows it (the SMTP client's first
 * command, or a TLS ClientHello).
 *
 * Strict (spec 2.1, 2.2): the first byte decides the version ('P': v1,
 * CR: v2) and the first byte that cannot belong to a valid header is an
 * error. v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" with single spaces,
 * dotted IPv4 without leading zeros, IPv6 as inet_pton reads it, ports
 * 0..65535 without leading zeros, at most PROXY_PROTO_V1_LINE_MAX bytes
 * CRLF included, no lone CR or LF; "PROXY UNKNOWN" followed by CRLF or by a
 * space and anything up to CRLF. v2: the 12-byte signature, version 2,
 * command LOCAL or PROXY, a defined family and transport, PROXY only over
 * TCP (INET or INET6 STREAM), an address block at least as long as the
 * family needs, at most PROXY_PROTO_V2_LEN_MAX bytes after the fixed part,
 * and TLVs that tile the rest exactly (skipped, not interpreted).
 */
#ifndef SG_NET_PROXY_PROTO_H
#define SG_NET_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_PROTO_V1_LINE_MAX 107 /* spec 2.1: the worst case, CRLF included */
#define PROXY_PROTO_V2_FIXED 16 /* spec 2.2: signature, ver_cmd, fam, len */
/* Ours: the spec allows 65535 bytes of addresses and TLVs after the fixed
 * part; a balancer's TLVs (ALPN, authority, unique id, SSL) fit in far less. */
#define PROXY_PROTO_V2_LEN_MAX 4096
#define PROXY_PROTO_V2_ADDR_MAX 36 /* TCP over IPv6: 2 * 16 + 2 * 2 */

enum proxy_proto_status {
	PROXY_PROTO_NEED_MORE, /* all bytes consumed; the header is not complete */
	PROXY_PROTO_DONE, /* *used_r bytes of this call end the header: see result */
	PROXY_PROTO_ERROR, /* not a valid header: errstr says why; close */
};

enum proxy_proto_command {
	PROXY_PROTO_LOCAL, /* v2 LOCAL: the balancer's own connection (health check) */
	PROXY_PROTO_PROXY, /* relayed: src and dst are the client's connection */
	PROXY_PROTO_UNKNOWN, /* v1 UNKNOWN: use the real connection's endpoints */
};

struct proxy_proto_result {
	int version; /* 1 or 2 */
	enum proxy_proto_command command;
	/* PROXY_PROTO_PROXY: AF_INET or AF_INET6, and src, dst are sockaddr_in
	 * or sockaddr_in6 with their ports; otherwise AF_UNSPEC and zeroes */
	int family;
	struct sockaddr_storage src, dst;
	size_t len; /* bytes of the whole header */
};

/* Layout public so it can live on the stack; use the functions below. */
struct proxy_proto {
	int state;
	size_t total; /* header bytes consumed so far */
	unsigned char buf[PROXY_PROTO_V1_LINE_MAX + 1]; /* v1 line, or v2 fixed part + addresses */
	size_t blen;
	size_t v2_len; /* v2: bytes after the fixed part */
	size_t v2_left; /* v2: of those, not yet consumed */
	size_t v2_addr; /* v2: bytes of the address block */
	size_t tlv_left; /* v2: bytes of the current TLV's value still to skip */
	unsigned tlv_head; /* v2: bytes of the current TLV's 3-byte head seen */
	struct proxy_proto_result result;
	const char *errstr; /* static, after PROXY_PROTO_ERROR */
};

void proxy_proto_init(struct proxy_proto *p);
/*
 * Feeds data[0..len). *used_r: all of it for NEED_MORE, the bytes up to and
 * including the header's last for DONE (then p->result is set), up to the
 * offending byte for ERROR (then p->errstr is set). After DONE or ERROR
 * the parser stays there; init it again for another header.
 */
enum proxy_proto_status proxy_proto_feed(
    struct proxy_proto *p, const void *data, size_t len, size_t *used_r);

/* "PROXY", "LOCAL", "UNKNOWN" (static). */
const char *proxy_proto_command_name(enum proxy_proto_command c);

#endif

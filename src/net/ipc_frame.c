/*
 * ipc_frame: see ipc_frame.h. No I/O, no allocation: the fuzz target
 * (tests/fuzz/fuzz_ipc_frame.c) and the unit tests feed it any bytes.
 */
#include <string.h>

#include "net/ipc_frame.h"

static uint32_t
ipc_frame_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
ipc_frame_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

enum ipc_parse
ipc_frame_parse(const unsigned char *buf, size_t len, struct ipc_frame *f)
{
	uint32_t type, plen;

	memset(f, 0, sizeof(*f));
	/* the type is known after 4 bytes and the length after 8: say BAD as
	 * soon as the bytes show it */
	if (len >= 4) {
		type = ipc_frame_be32(buf);
		if (type == 0 || type > IPC_TYPE_MAX)
			return IPC_PARSE_BAD;
	}
	if (len >= 8) {
		plen = ipc_frame_be32(buf + 4);
		if (plen > IPC_PAYLOAD_MAX)
			return IPC_PARSE_BAD;
	}
	if (len < IPC_FRAME_HDR)
		return IPC_PARSE_MORE;
	type = ipc_frame_be32(buf);
	plen = ipc_frame_be32(buf + 4);
	if (len - IPC_FRAME_HDR < plen)
		return IPC_PARSE_MORE;
	f->type = type;
	f->id = (uint64_t)ipc_frame_be32(buf + 8) << 32 | ipc_frame_be32(buf + 12);
	f->payload = buf + IPC_FRAME_HDR;
	f->len = plen;
	return IPC_PARSE_OK;
}

void
ipc_reader_init(struct ipc_reader *r, const struct ipc_frame *f)
{
	r->p = f->payload;
	r->len = f->len;
	r->pos = 0;
	r->bad = false;
}

int
ipc_get_u32(struct ipc_reader *r, uint32_t *v)
{
	if (r->bad || r->len - r->pos < 4) {
		r->bad = true;
		return -1;
	}
	*v = ipc_frame_be32(r->p + r->pos);
	r->pos += 4;
	return 0;
}

int
ipc_get_bytes(struct ipc_reader *r, size_t max, const unsigned char **data_r, size_t *len_r)
{
	uint32_t n;

	if (ipc_get_u32(r, &n) == -1)
		return -1;
	if (n > max || r->len - r->pos < n) {
		r->bad = true;
		return -1;
	}
	*data_r = r->p + r->pos;
	*len_r = n;
	r->pos += n;
	return 0;
}

int
ipc_get_str(struct ipc_reader *r, char *out, size_t max)
{
	const unsigned char *d;
	size_t n;

	out[0] = '\0';
	if (ipc_get_bytes(r, max, &d, &n) == -1)
		return -1;
	if (memchr(d, '\0', n) != NULL) {
		r->bad = true;
		return -1;
	}
	memcpy(out, d, n);
	out[n] = '\0';
	return 0;
}

bool
ipc_reader_done(const struct ipc_reader *r)
{
	return !r->bad && r->pos == r->len;
}

void
ipc_out_begin(struct ipc_out *o, uint32_t type, uint64_t id)
{
	o->len = IPC_FRAME_HDR;
	o->overflow = false;
	ipc_frame_put_be32(o->buf, type);
	ipc_frame_put_be32(o->buf + 4, 0);
	ipc_frame_put_be32(o->buf + 8, (uint32_t)(id >> 32));
	ipc_frame_put_be32(o->buf + 12, (uint32_t)id);
}

void
ipc_put_u32(struct ipc_out *o, uint32_t v)
{
	if (o->overflow || sizeof(o->buf) - o->len < 4) {
		o->overflow = true;
		return;
	}
	ipc_frame_put_be32(o->buf + o->len, v);
	o->len += 4;
}

void
ipc_put_bytes(struct ipc_out *o, const void *data, size_t len)
{
	if (o->overflow || sizeof(o->buf) - o->len < 4 || sizeof(o->buf) - o->len - 4 < len) {
		o->overflow = true;
		return;
	}
	ipc_put_u32(o, (uint32_t)len);
	if (len > 0)
		memcpy(o->buf + o->len, data, len);
	o->len += len;
}

void
ipc_put_str(struct ipc_out *o, const char *s)
{
	ipc_put_bytes(o, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

int
ipc_out_end(struct ipc_out *o)
{
	if (o->overflow)
		return -1;
	ipc_frame_put_be32(o->buf + 4, (uint32_t)(o->len - IPC_FRAME_HDR));
	return 0;
}

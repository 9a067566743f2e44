/*
 * auth_msg: see auth_msg.h.
 */
#include <string.h>

#include "server/auth_msg.h"

static void
auth_msg_put_u64(struct ipc_out *o, uint64_t v)
{
	ipc_put_u32(o, (uint32_t)(v >> 32));
	ipc_put_u32(o, (uint32_t)v);
}

static int
auth_msg_get_u64(struct ipc_reader *rd, uint64_t *v)
{
	uint32_t hi, lo;

	if (ipc_get_u32(rd, &hi) == -1 || ipc_get_u32(rd, &lo) == -1)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/* A 0/1 field. */
static int
auth_msg_get_bool(struct ipc_reader *rd, bool *b)
{
	uint32_t v;

	if (ipc_get_u32(rd, &v) == -1 || v > 1)
		return -1;
	*b = v == 1;
	return 0;
}

int
auth_msg_req_encode(struct ipc_out *o, uint64_t id, const struct auth_msg_req *r)
{
	ipc_out_begin(o, r->type, id);
	switch (r->type) {
	case AUTH_MSG_PLAIN:
		ipc_put_bytes(o, r->user, r->userlen);
		ipc_put_bytes(o, r->secret, r->secretlen);
		ipc_put_str(o, r->client);
		break;
	case AUTH_MSG_SASL_START:
		ipc_put_str(o, r->mech);
		ipc_put_bytes(o, r->secret, r->secretlen);
		ipc_put_bytes(o, r->chal, r->challen);
		ipc_put_u32(o, r->plus_offered);
		for (size_t i = 0; i < SASL_CB_NTYPES; i++)
			ipc_put_bytes(o, r->cb[i], r->cblen[i]);
		ipc_put_str(o, r->client);
		break;
	case AUTH_MSG_SASL_STEP:
		auth_msg_put_u64(o, r->handle);
		ipc_put_u32(o, r->has_input);
		ipc_put_bytes(o, r->secret, r->secretlen);
		break;
	case AUTH_MSG_SASL_END:
		auth_msg_put_u64(o, r->handle);
		break;
	case AUTH_MSG_USE:
		ipc_put_bytes(o, r->user, r->userlen);
		ipc_put_str(o, r->label);
		ipc_put_str(o, r->created);
		ipc_put_str(o, r->client);
		break;
	case AUTH_MSG_TOKEN:
		ipc_put_bytes(o, r->user, r->userlen);
		ipc_put_bytes(o, r->secret, r->secretlen);
		break;
	default:
		return -1;
	}
	return ipc_out_end(o);
}

/* The user field: bytes (a SASL user may hold a NUL that the authdb cuts
 * at), kept NUL-terminated for the log. */
static int
auth_msg_get_user(struct ipc_reader *rd, struct auth_msg_req *r)
{
	const unsigned char *d;

	if (ipc_get_bytes(rd, SASL_USER_MAX, &d, &r->userlen) == -1)
		return -1;
	memcpy(r->user, d, r->userlen);
	r->user[r->userlen] = '\0';
	return 0;
}

static int
auth_msg_get_secret(struct ipc_reader *rd, struct auth_msg_req *r, size_t max)
{
	const unsigned char *d;

	if (ipc_get_bytes(rd, max, &d, &r->secretlen) == -1)
		return -1;
	memcpy(r->secret, d, r->secretlen);
	return 0;
}

/* AUTH_MSG_SASL_START's fields after the type. */
static int
auth_msg_get_start(struct ipc_reader *rd, struct auth_msg_req *r)
{
	const unsigned char *d;

	if (ipc_get_str(rd, r->mech, AUTH_MSG_MECH_MAX) == -1 ||
	    auth_msg_get_secret(rd, r, AUTH_MSG_SASL_MAX) == -1 ||
	    ipc_get_bytes(rd, AUTH_MSG_SASL_MAX, &d, &r->challen) == -1)
		return -1;
	memcpy(r->chal, d, r->challen);
	r->chal[r->challen] = '\0';
	if (auth_msg_get_bool(rd, &r->plus_offered) == -1)
		return -1;
	for (size_t i = 0; i < SASL_CB_NTYPES; i++) {
		if (ipc_get_bytes(rd, SASL_CB_DATA_MAX, &d, &r->cblen[i]) == -1)
			return -1;
		memcpy(r->cb[i], d, r->cblen[i]);
	}
	return ipc_get_str(rd, r->client, AUTH_MSG_CLIENT_MAX);
}

int
auth_msg_req_decode(const struct ipc_frame *f, struct auth_msg_req *r)
{
	struct ipc_reader rd;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	ipc_reader_init(&rd, f);
	r->type = (enum auth_msg_type)f->type;
	switch (f->type) {
	case AUTH_MSG_PLAIN:
		rc = auth_msg_get_user(&rd, r) == 0 &&
		        auth_msg_get_secret(&rd, r, SASL_SECRET_MAX) == 0 &&
		        ipc_get_str(&rd, r->client, AUTH_MSG_CLIENT_MAX) == 0
		    ? 0
		    : -1;
		break;
	case AUTH_MSG_SASL_START:
		rc = auth_msg_get_start(&rd, r);
		break;
	case AUTH_MSG_SASL_STEP:
		rc = auth_msg_get_u64(&rd, &r->handle) == 0 && r->handle != 0 &&
		        auth_msg_get_bool(&rd, &r->has_input) == 0 &&
		        auth_msg_get_secret(&rd, r, AUTH_MSG_SASL_MAX) == 0
		    ? 0
		    : -1;
		break;
	case AUTH_MSG_SASL_END:
		rc = auth_msg_get_u64(&rd, &r->handle) == 0 && r->handle != 0 ? 0 : -1;
		break;
	case AUTH_MSG_USE:
		rc = auth_msg_get_user(&rd, r) == 0 &&
		        ipc_get_str(&rd, r->label, SASL_CRED_ID_MAX) == 0 &&
		        ipc_get_str(&rd, r->created, SASL_CRED_ID_MAX) == 0 &&
		        ipc_get_str(&rd, r->client, AUTH_MSG_CLIENT_MAX) == 0
		    ? 0
		    : -1;
		break;
	case AUTH_MSG_TOKEN:
		rc = auth_msg_get_user(&rd, r) == 0 &&
		        auth_msg_get_secret(&rd, r, SASL_TOKEN_MAX) == 0
		    ? 0
		    : -1;
		break;
	default:
		break;
	}
	if (rc == 0 && !ipc_reader_done(&rd))
		rc = -1;
	if (rc == -1)
		explicit_bzero(r, sizeof(*r));
	return rc;
}

int
auth_msg_answer_encode(struct ipc_out *o, uint64_t id, const struct auth_msg_answer *a)
{
	ipc_out_begin(o, AUTH_MSG_ANSWER, id);
	ipc_put_u32(o, a->result);
	ipc_put_u32(o, a->user_known);
	ipc_put_str(o, a->user);
	ipc_put_str(o, a->senders);
	ipc_put_str(o, a->reason);
	ipc_put_str(o, a->openid);
	ipc_put_u32(o, a->status);
	auth_msg_put_u64(o, a->handle);
	ipc_put_bytes(o, a->chal, a->challen);
	return ipc_out_end(o);
}

int
auth_msg_answer_decode(const struct ipc_frame *f, struct auth_msg_answer *a)
{
	struct ipc_reader rd;
	const unsigned char *d;
	uint32_t known = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	if (f->type != AUTH_MSG_ANSWER)
		return -1;
	ipc_reader_init(&rd, f);
	rc = ipc_get_u32(&rd, &a->result) == 0 && a->result <= 2 && ipc_get_u32(&rd, &known) == 0 &&
	        known <= 1 && ipc_get_str(&rd, a->user, AUTHDB_USER_MAX) == 0 &&
	        ipc_get_str(&rd, a->senders, AUTHDB_SENDERS_MAX) == 0 &&
	        ipc_get_str(&rd, a->reason, AUTH_MSG_REASON_MAX) == 0 &&
	        ipc_get_str(&rd, a->openid, AUTH_MSG_URL_MAX) == 0 &&
	        ipc_get_u32(&rd, &a->status) == 0 && a->status <= SASL_TOO_LONG &&
	        auth_msg_get_u64(&rd, &a->handle) == 0 &&
	        ipc_get_bytes(&rd, AUTH_MSG_SASL_MAX, &d, &a->challen) == 0
	    ? 0
	    : -1;
	a->user_known = known == 1;
	if (rc == 0)
		memcpy(a->chal, d, a->challen);
	if (rc == 0 && !ipc_reader_done(&rd))
		rc = -1;
	if (rc == -1)
		explicit_bzero(a, sizeof(*a));
	return rc;
}

/*
 * auth_msg: see auth_msg.h.
 */
#include <string.h>

#include "server/auth_msg.h"

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
	case AUTH_MSG_KEYS:
		ipc_put_u32(o, (uint32_t)r->kind);
		ipc_put_bytes(o, r->user, r->userlen);
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

int
auth_msg_req_decode(const struct ipc_frame *f, struct auth_msg_req *r)
{
	struct ipc_reader rd;
	uint32_t kind;
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
	case AUTH_MSG_KEYS:
		rc = ipc_get_u32(&rd, &kind) == 0 && auth_msg_get_user(&rd, r) == 0 ? 0 : -1;
		if (rc == 0 && kind != SASL_KEYS_SCRAM_SHA1 && kind != SASL_KEYS_SCRAM_SHA256 &&
		    kind != SASL_KEYS_CRAM_MD5)
			rc = -1;
		r->kind = (enum sasl_keys_kind)kind;
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
		rc = auth_msg_get_user(&rd, r) == 0 && auth_msg_get_secret(&rd, r, SASL_TOKEN_MAX) == 0
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

static void
auth_msg_put_keys(struct ipc_out *o, const struct sasl_keys *k)
{
	ipc_put_u32(o, k->iter);
	ipc_put_bytes(o, k->salt, k->saltlen);
	ipc_put_bytes(o, k->stored_key, k->keylen);
	ipc_put_bytes(o, k->server_key, k->keylen);
	ipc_put_u32(o, (uint32_t)k->ncand);
	for (size_t i = 0; i < k->ncand && i < SASL_SCRAM_CAND_MAX; i++) {
		ipc_put_bytes(o, k->cand[i].stored_key, k->keylen);
		ipc_put_bytes(o, k->cand[i].server_key, k->keylen);
		ipc_put_str(o, k->cand[i].label);
		ipc_put_str(o, k->cand[i].created);
	}
	ipc_put_bytes(o, k->secret, k->secretlen);
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
	ipc_put_u32(o, a->has_keys);
	if (a->has_keys)
		auth_msg_put_keys(o, &a->keys);
	return ipc_out_end(o);
}

/* A key field of exactly len bytes (the first one fixes len). */
static int
auth_msg_get_key(struct ipc_reader *rd, unsigned char *out, size_t *len)
{
	const unsigned char *d;
	size_t n;

	if (ipc_get_bytes(rd, SASL_KEY_MAX, &d, &n) == -1 ||
	    (*len != (size_t)-1 && n != *len))
		return -1;
	memcpy(out, d, n);
	*len = n;
	return 0;
}

static int
auth_msg_get_keys(struct ipc_reader *rd, struct sasl_keys *k)
{
	const unsigned char *d;
	uint32_t v, n;
	size_t keylen = (size_t)-1;

	if (ipc_get_u32(rd, &v) == -1 || ipc_get_bytes(rd, SASL_SCRAM_SALT_MAX, &d, &k->saltlen))
		return -1;
	k->iter = v;
	memcpy(k->salt, d, k->saltlen);
	if (auth_msg_get_key(rd, k->stored_key, &keylen) == -1 ||
	    auth_msg_get_key(rd, k->server_key, &keylen) == -1 || ipc_get_u32(rd, &n) == -1 ||
	    n > SASL_SCRAM_CAND_MAX)
		return -1;
	k->keylen = keylen;
	k->ncand = n;
	for (size_t i = 0; i < n; i++) {
		struct sasl_scram_cand *c = &k->cand[i];

		if (auth_msg_get_key(rd, c->stored_key, &keylen) == -1 ||
		    auth_msg_get_key(rd, c->server_key, &keylen) == -1 ||
		    ipc_get_str(rd, c->label, SASL_CRED_ID_MAX) == -1 ||
		    ipc_get_str(rd, c->created, SASL_CRED_ID_MAX) == -1)
			return -1;
	}
	if (ipc_get_bytes(rd, SASL_KEY_MAX, &d, &k->secretlen) == -1)
		return -1;
	memcpy(k->secret, d, k->secretlen);
	return 0;
}

int
auth_msg_answer_decode(const struct ipc_frame *f, struct auth_msg_answer *a)
{
	struct ipc_reader rd;
	uint32_t known = 0, keys = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	if (f->type != AUTH_MSG_ANSWER)
		return -1;
	ipc_reader_init(&rd, f);
	rc = ipc_get_u32(&rd, &a->result) == 0 && a->result <= 2 &&
	        ipc_get_u32(&rd, &known) == 0 && known <= 1 &&
	        ipc_get_str(&rd, a->user, AUTHDB_USER_MAX) == 0 &&
	        ipc_get_str(&rd, a->senders, AUTHDB_SENDERS_MAX) == 0 &&
	        ipc_get_str(&rd, a->reason, AUTH_MSG_REASON_MAX) == 0 &&
	        ipc_get_str(&rd, a->openid, AUTH_MSG_URL_MAX) == 0 && ipc_get_u32(&rd, &keys) == 0 &&
	        keys <= 1
	    ? 0
	    : -1;
	a->user_known = known == 1;
	a->has_keys = keys == 1;
	if (rc == 0 && a->has_keys && auth_msg_get_keys(&rd, &a->keys) == -1)
		rc = -1;
	if (rc == 0 && !ipc_reader_done(&rd))
		rc = -1;
	if (rc == -1)
		explicit_bzero(a, sizeof(*a));
	return rc;
}

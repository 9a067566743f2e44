/*
 * libFuzzer target: server/auth_msg, the messages the auth process reads
 * from the smtp process and the smtp process reads back. The input is one
 * frame; its payload is decoded as a request and as an answer. Whatever
 * decodes must stay inside its limits, and encode and decode again to the
 * same message (nothing is lost or invented by the codec). abort() when not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ipc_out fuzz_out;
static struct auth_msg_req fuzz_req, fuzz_req2;
static struct auth_msg_answer fuzz_ans, fuzz_ans2;

static void
fuzz_auth_msg_req(const struct ipc_frame *f)
{
	struct ipc_frame g;

	if (auth_msg_req_decode(f, &fuzz_req) == -1)
		return;
	if (fuzz_req.userlen > SASL_USER_MAX || fuzz_req.secretlen > SASL_TOKEN_MAX ||
	    fuzz_req.user[fuzz_req.userlen] != '\0' ||
	    strlen(fuzz_req.client) > AUTH_MSG_CLIENT_MAX)
		abort();
	if (fuzz_req.type == AUTH_MSG_PLAIN && fuzz_req.secretlen > SASL_SECRET_MAX)
		abort();
	if (fuzz_req.challen > AUTH_MSG_SASL_MAX || fuzz_req.chal[fuzz_req.challen] != '\0' ||
	    strlen(fuzz_req.mech) > AUTH_MSG_MECH_MAX ||
	    (fuzz_req.type == AUTH_MSG_SASL_STEP && fuzz_req.handle == 0))
		abort();
	for (size_t i = 0; i < SASL_CB_NTYPES; i++) {
		if (fuzz_req.cblen[i] > SASL_CB_DATA_MAX)
			abort();
	}
	if (auth_msg_req_encode(&fuzz_out, f->id, &fuzz_req) != 0 ||
	    ipc_frame_parse(fuzz_out.buf, fuzz_out.len, &g) != IPC_PARSE_OK || g.len != f->len ||
	    memcmp(g.payload, f->payload, f->len) != 0 ||
	    auth_msg_req_decode(&g, &fuzz_req2) != 0 ||
	    memcmp(&fuzz_req, &fuzz_req2, sizeof(fuzz_req)) != 0)
		abort();
}

static void
fuzz_auth_msg_answer(const struct ipc_frame *f)
{
	struct ipc_frame g;

	if (auth_msg_answer_decode(f, &fuzz_ans) == -1)
		return;
	if (fuzz_ans.result > 2 || fuzz_ans.status > SASL_TOO_LONG ||
	    fuzz_ans.challen > AUTH_MSG_SASL_MAX)
		abort();
	if (auth_msg_answer_encode(&fuzz_out, f->id, &fuzz_ans) != 0 ||
	    ipc_frame_parse(fuzz_out.buf, fuzz_out.len, &g) != IPC_PARSE_OK ||
	    auth_msg_answer_decode(&g, &fuzz_ans2) != 0 ||
	    memcmp(&fuzz_ans, &fuzz_ans2, sizeof(fuzz_ans)) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_frame f;

	if (ipc_frame_parse(data, size, &f) != IPC_PARSE_OK)
		return 0;
	fuzz_auth_msg_req(&f);
	fuzz_auth_msg_answer(&f);
	return 0;
}

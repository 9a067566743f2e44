/* Unit tests for server/auth_msg (the typed messages between the smtp and
 * auth processes): every request type and an answer with a SASL
 * challenge go through encode and decode unchanged; each field at its
 * limit passes and one byte over fails; every prefix of a payload (cut
 * byte by byte) and a payload with a byte too many are refused whole;
 * unknown types, statuses, results, flags and a handle of 0 are refused; a
 * refused decode leaves no secret behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/auth_msg.h"

/* The frame o holds, parsed back. */
static struct ipc_frame
frame_of(const struct ipc_out *o)
{
	struct ipc_frame f;

	assert_int_equal(ipc_frame_parse(o->buf, o->len, &f), IPC_PARSE_OK);
	return f;
}

static struct auth_msg_req *
req_new(enum auth_msg_type type, const char *user)
{
	struct auth_msg_req *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->type = type;
	r->userlen = strlen(user);
	memcpy(r->user, user, r->userlen);
	return r;
}

static void
req_round_trip(const struct auth_msg_req *r, uint64_t id)
{
	static struct ipc_out o;
	struct auth_msg_req *back = calloc(1, sizeof(*back));
	struct ipc_frame f;

	assert_non_null(back);
	assert_int_equal(auth_msg_req_encode(&o, id, r), 0);
	f = frame_of(&o);
	assert_int_equal(f.type, r->type);
	assert_true(f.id == id);
	assert_int_equal(auth_msg_req_decode(&f, back), 0);
	assert_int_equal(back->type, r->type);
	assert_int_equal(back->userlen, r->userlen);
	assert_memory_equal(back->user, r->user, r->userlen);
	assert_int_equal(back->user[back->userlen], '\0');
	assert_int_equal(back->secretlen, r->secretlen);
	if (r->secretlen > 0)
		assert_memory_equal(back->secret, r->secret, r->secretlen);
	assert_string_equal(back->client, r->client);
	assert_string_equal(back->label, r->label);
	assert_string_equal(back->created, r->created);
	assert_true(back->handle == r->handle);
	assert_int_equal(back->has_input, r->has_input);
	assert_string_equal(back->mech, r->mech);
	assert_int_equal(back->challen, r->challen);
	assert_memory_equal(back->chal, r->chal, r->challen);
	assert_int_equal(back->plus_offered, r->plus_offered);
	for (size_t i = 0; i < SASL_CB_NTYPES; i++) {
		assert_int_equal(back->cblen[i], r->cblen[i]);
		assert_memory_equal(back->cb[i], r->cb[i], r->cblen[i]);
	}

	/* each shorter payload is refused, and wiped */
	for (size_t cut = 0; cut < f.len; cut++) {
		struct ipc_frame g = f;

		g.len = cut;
		memset(back, 0x5a, sizeof(*back));
		if (auth_msg_req_decode(&g, back) != -1)
			fail_msg(
			    "type %u: a payload cut at %zu of %zu decoded", r->type, cut, f.len);
		for (size_t i = 0; i < sizeof(back->secret); i++)
			assert_int_equal(back->secret[i], 0);
	}
	/* a byte after the last field is as bad */
	{
		static unsigned char longer[IPC_FRAME_MAX];
		struct ipc_frame g = f;

		memcpy(longer, f.payload, f.len);
		longer[f.len] = 0;
		g.payload = longer;
		g.len = f.len + 1;
		assert_int_equal(auth_msg_req_decode(&g, back), -1);
	}
	free(back);
}

static void
test_requests_round_trip(void **state)
{
	struct auth_msg_req *r;

	(void)state;
	r = req_new(AUTH_MSG_PLAIN, "alice@example.org");
	memcpy(r->secret, "pa\0ss", 5); /* a password may hold any byte */
	r->secretlen = 5;
	strcpy(r->client, "192.0.2.7");
	req_round_trip(r, 1);
	free(r);

	r = req_new(AUTH_MSG_PLAIN, "");
	req_round_trip(r, UINT64_MAX);
	free(r);

	r = req_new(AUTH_MSG_SASL_START, "");
	strcpy(r->mech, "SCRAM-SHA-256-PLUS");
	memcpy(r->secret, "p=tls-exporter,,n=bob,r=abc", 27);
	r->secretlen = 27;
	r->plus_offered = true;
	memset(r->cb[SASL_CB_TLS_EXPORTER], 7, SASL_TLS_EXPORTER_LEN);
	r->cblen[SASL_CB_TLS_EXPORTER] = SASL_TLS_EXPORTER_LEN;
	memset(r->cb[SASL_CB_TLS_UNIQUE], 8, SASL_CB_DATA_MAX);
	r->cblen[SASL_CB_TLS_UNIQUE] = SASL_CB_DATA_MAX;
	strcpy(r->client, "192.0.2.9");
	req_round_trip(r, 2);
	strcpy(r->mech, "CRAM-MD5");
	strcpy(r->chal, "<123.456@mx.example>");
	r->challen = strlen(r->chal);
	req_round_trip(r, 3);
	free(r);

	r = req_new(AUTH_MSG_SASL_STEP, "");
	r->handle = UINT64_MAX - 1;
	r->has_input = true;
	memset(r->secret, 'c', AUTH_MSG_SASL_MAX);
	r->secretlen = AUTH_MSG_SASL_MAX;
	req_round_trip(r, 4);
	r->has_input = false;
	r->secretlen = 0;
	req_round_trip(r, 4);
	free(r);

	r = req_new(AUTH_MSG_SASL_END, "");
	r->handle = 1;
	req_round_trip(r, 4);
	free(r);

	r = req_new(AUTH_MSG_USE, "carol");
	strcpy(r->label, "phone");
	strcpy(r->created, "2026-12-01");
	strcpy(r->client, "2001:db8::1");
	req_round_trip(r, 5);
	free(r);

	r = req_new(AUTH_MSG_TOKEN, "dave@example.org");
	memset(r->secret, 'A', SASL_TOKEN_MAX);
	r->secretlen = SASL_TOKEN_MAX;
	req_round_trip(r, 6);
	free(r);
}

/* Encodes r and tells whether it decodes. */
static int
req_decodes(const struct auth_msg_req *r)
{
	static struct ipc_out o;
	struct auth_msg_req *back = calloc(1, sizeof(*back));
	struct ipc_frame f;
	int rc;

	assert_non_null(back);
	assert_int_equal(auth_msg_req_encode(&o, 9, r), 0);
	f = frame_of(&o);
	rc = auth_msg_req_decode(&f, back);
	free(back);
	return rc;
}

static void
test_request_limits(void **state)
{
	struct auth_msg_req *r = req_new(AUTH_MSG_PLAIN, "");

	(void)state;
	memset(r->user, 'u', SASL_USER_MAX);
	r->userlen = SASL_USER_MAX;
	assert_int_equal(req_decodes(r), 0);
	r->userlen = SASL_USER_MAX + 1; /* the encoder sends what it is given */
	r->user[SASL_USER_MAX] = 'u';
	assert_int_equal(req_decodes(r), -1);

	r->userlen = 1;
	r->secretlen = SASL_SECRET_MAX;
	assert_int_equal(req_decodes(r), 0);
	r->secretlen = SASL_SECRET_MAX + 1; /* a password longer than the session takes */
	assert_int_equal(req_decodes(r), -1);
	r->secretlen = 1;

	memset(r->client, '1', AUTH_MSG_CLIENT_MAX);
	assert_int_equal(req_decodes(r), 0);

	r->type = AUTH_MSG_TOKEN;
	r->secretlen = SASL_TOKEN_MAX + 1;
	assert_int_equal(req_decodes(r), -1);

	/* a SASL message longer than any mechanism takes, a handle of 0 */
	r->type = AUTH_MSG_SASL_STEP;
	r->handle = 5;
	r->secretlen = AUTH_MSG_SASL_MAX;
	assert_int_equal(req_decodes(r), 0);
	r->secretlen = AUTH_MSG_SASL_MAX + 1;
	assert_int_equal(req_decodes(r), -1);
	r->secretlen = 1;
	r->handle = 0;
	assert_int_equal(req_decodes(r), -1);
	r->type = AUTH_MSG_SASL_END;
	assert_int_equal(req_decodes(r), -1);

	/* start: mechanism name, challenge and channel binding at their limits */
	r->type = AUTH_MSG_SASL_START;
	memset(r->mech, 'M', AUTH_MSG_MECH_MAX);
	r->challen = AUTH_MSG_SASL_MAX;
	r->cblen[0] = SASL_CB_DATA_MAX;
	assert_int_equal(req_decodes(r), 0);
	r->challen = AUTH_MSG_SASL_MAX + 1;
	assert_int_equal(req_decodes(r), -1);
	r->challen = 1;
	r->cblen[0] = SASL_CB_DATA_MAX + 1;
	assert_int_equal(req_decodes(r), -1);
	free(r);

	/* a mechanism name past its limit, a plus flag of 2 */
	{
		static struct ipc_out o;
		struct auth_msg_req *back = calloc(1, sizeof(*back));
		char mech[AUTH_MSG_MECH_MAX + 2];
		struct ipc_frame f;

		assert_non_null(back);
		memset(mech, 'M', sizeof(mech) - 1);
		mech[sizeof(mech) - 1] = '\0';
		for (int bad = 0; bad < 2; bad++) {
			ipc_out_begin(&o, AUTH_MSG_SASL_START, 1);
			ipc_put_str(&o, bad == 0 ? mech : "SCRAM-SHA-1");
			ipc_put_bytes(&o, "x", 1);
			ipc_put_bytes(&o, "", 0);
			ipc_put_u32(&o, bad == 0 ? 0 : 2);
			ipc_put_bytes(&o, "", 0);
			ipc_put_bytes(&o, "", 0);
			ipc_put_str(&o, "");
			assert_int_equal(ipc_out_end(&o), 0);
			f = frame_of(&o);
			assert_int_equal(auth_msg_req_decode(&f, back), -1);
		}
		free(back);
	}
}

static void
test_bad_types(void **state)
{
	static struct ipc_out o;
	struct auth_msg_req *r = calloc(1, sizeof(*r));
	struct auth_msg_answer *a = calloc(1, sizeof(*a));
	struct ipc_frame f;

	(void)state;
	assert_non_null(r);
	assert_non_null(a);
	/* an answer is not a request, and neither is a channel or type 200 */
	r->type = AUTH_MSG_ANSWER;
	assert_int_equal(auth_msg_req_encode(&o, 1, r), -1);
	r->type = AUTH_MSG_CHANNEL;
	assert_int_equal(auth_msg_req_encode(&o, 1, r), -1);
	for (uint32_t t = AUTH_MSG_ANSWER; t <= 200; t += 5) {
		ipc_out_begin(&o, t, 1);
		assert_int_equal(ipc_out_end(&o), 0);
		f = frame_of(&o);
		assert_int_equal(auth_msg_req_decode(&f, r), -1);
	}
	/* a request is not an answer */
	ipc_out_begin(&o, AUTH_MSG_PLAIN, 1);
	ipc_put_u32(&o, 0);
	assert_int_equal(ipc_out_end(&o), 0);
	f = frame_of(&o);
	assert_int_equal(auth_msg_answer_decode(&f, a), -1);
	free(r);
	free(a);
}

static struct auth_msg_answer *
answer_with_chal(void)
{
	struct auth_msg_answer *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	a->result = AUTHDB_OK;
	a->user_known = true;
	strcpy(a->user, "alice@example.org");
	strcpy(a->senders, "alice@example.org,*@alice.example");
	strcpy(a->openid, "https://idp.example/.well-known/openid-configuration");
	a->status = 0; /* SASL_CONTINUE */
	a->handle = 0x0123456789abcdefULL;
	memcpy(a->chal, "r=abcdef,s=c2FsdA==,i=4096", 26);
	a->challen = 26;
	return a;
}

static void
test_answer_round_trip(void **state)
{
	static struct ipc_out o;
	struct auth_msg_answer *a = answer_with_chal();
	struct auth_msg_answer *back = calloc(1, sizeof(*back));
	struct ipc_frame f;

	(void)state;
	assert_non_null(back);
	assert_int_equal(auth_msg_answer_encode(&o, 42, a), 0);
	f = frame_of(&o);
	assert_true(f.id == 42);
	assert_int_equal(auth_msg_answer_decode(&f, back), 0);
	assert_int_equal(back->result, a->result);
	assert_true(back->user_known);
	assert_string_equal(back->user, a->user);
	assert_string_equal(back->senders, a->senders);
	assert_string_equal(back->reason, "");
	assert_string_equal(back->openid, a->openid);
	assert_int_equal(back->status, a->status);
	assert_true(back->handle == a->handle);
	assert_int_equal(back->challen, a->challen);
	assert_memory_equal(back->chal, a->chal, a->challen);

	for (size_t cut = 0; cut < f.len; cut++) {
		struct ipc_frame g = f;

		g.len = cut;
		memset(back, 0x5a, sizeof(*back));
		if (auth_msg_answer_decode(&g, back) != -1)
			fail_msg("an answer cut at %zu of %zu decoded", cut, f.len);
		for (size_t i = 0; i < sizeof(back->chal); i++)
			assert_int_equal(back->chal[i], 0);
	}
	/* the longest challenge passes, one byte more does not */
	a->challen = AUTH_MSG_SASL_MAX;
	assert_int_equal(auth_msg_answer_encode(&o, 1, a), 0);
	f = frame_of(&o);
	assert_int_equal(auth_msg_answer_decode(&f, back), 0);
	a->challen = AUTH_MSG_SASL_MAX + 1;
	assert_int_equal(auth_msg_answer_encode(&o, 1, a), 0);
	f = frame_of(&o);
	assert_int_equal(auth_msg_answer_decode(&f, back), -1);
	free(a);
	free(back);
}

/* The fields of an answer after openid: status, handle, challenge. */
static void
answer_tail(struct ipc_out *o, uint32_t status)
{
	ipc_put_u32(o, status);
	ipc_put_u32(o, 0);
	ipc_put_u32(o, 1);
	ipc_put_bytes(o, "", 0);
}

/* An answer that breaks one rule: each is refused. */
static void
test_answer_refused(void **state)
{
	static struct ipc_out o;
	struct auth_msg_answer *back = calloc(1, sizeof(*back));
	struct ipc_frame f;

	(void)state;
	assert_non_null(back);
	/* result 3 is no verdict */
	ipc_out_begin(&o, AUTH_MSG_ANSWER, 1);
	ipc_put_u32(&o, 3);
	ipc_put_u32(&o, 0);
	for (int i = 0; i < 4; i++)
		ipc_put_str(&o, "");
	answer_tail(&o, 0);
	assert_int_equal(ipc_out_end(&o), 0);
	f = frame_of(&o);
	assert_int_equal(auth_msg_answer_decode(&f, back), -1);

	/* a flag of 2 */
	ipc_out_begin(&o, AUTH_MSG_ANSWER, 1);
	ipc_put_u32(&o, 0);
	ipc_put_u32(&o, 2);
	for (int i = 0; i < 4; i++)
		ipc_put_str(&o, "");
	answer_tail(&o, 0);
	assert_int_equal(ipc_out_end(&o), 0);
	f = frame_of(&o);
	assert_int_equal(auth_msg_answer_decode(&f, back), -1);

	/* a status past SASL_TOO_LONG (7), and the well-formed one for contrast */
	for (uint32_t st = 7; st <= 8; st++) {
		ipc_out_begin(&o, AUTH_MSG_ANSWER, 1);
		ipc_put_u32(&o, 0);
		ipc_put_u32(&o, 0);
		for (int i = 0; i < 4; i++)
			ipc_put_str(&o, "");
		answer_tail(&o, st);
		assert_int_equal(ipc_out_end(&o), 0);
		f = frame_of(&o);
		assert_int_equal(auth_msg_answer_decode(&f, back), st == 7 ? 0 : -1);
	}

	/* a user name longer than the authdb keeps */
	{
		char *u = malloc(AUTHDB_USER_MAX + 2);

		assert_non_null(u);
		memset(u, 'u', AUTHDB_USER_MAX + 1);
		u[AUTHDB_USER_MAX + 1] = '\0';
		ipc_out_begin(&o, AUTH_MSG_ANSWER, 1);
		ipc_put_u32(&o, 0);
		ipc_put_u32(&o, 1);
		ipc_put_str(&o, u);
		for (int i = 0; i < 3; i++)
			ipc_put_str(&o, "");
		answer_tail(&o, 0);
		assert_int_equal(ipc_out_end(&o), 0);
		f = frame_of(&o);
		assert_int_equal(auth_msg_answer_decode(&f, back), -1);
		free(u);
	}
	free(back);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_requests_round_trip),
	    cmocka_unit_test(test_request_limits),
	    cmocka_unit_test(test_bad_types),
	    cmocka_unit_test(test_answer_round_trip),
	    cmocka_unit_test(test_answer_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for auth/dovecot_auth: tab-escaping both ways (round trip over
 * every byte value), the server-line parser on good and bad lines (table),
 * the same lines fed one byte at a time through a line splitter, and the
 * client against a scripted fake Dovecot on a socketpair-like UNIX socket
 * (OK with user=, FAIL, temp_fail, nologin, a closed connection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/dovecot_auth.h"
#include "lib/buf.h"

static void
test_escape(void **state)
{
	static const struct {
		const char *in;
		size_t inlen;
		const char *out;
	} cases[] = {
	    {"plain", 5, "plain"},
	    {"", 0, ""},
	    {"a\tb", 3, "a\001tb"},
	    {"\r\n", 2, "\001r\001n"},
	    {"\001", 1, "\0011"},
	    {"x\0y", 3, "x\0010y"},
	    {"\t\t", 2, "\001t\001t"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		char back[64];
		size_t backlen;

		buf_init(&b, 1024);
		assert_int_equal(dovecot_auth_escape(cases[i].in, cases[i].inlen, &b), 0);
		assert_int_equal(b.len, strlen(cases[i].out));
		assert_memory_equal(b.len ? b.data : "", cases[i].out, b.len);
		assert_null(memchr(b.len ? b.data : "", '\t', b.len));
		assert_int_equal(dovecot_auth_unescape(
		                     b.data ? b.data : "", b.len, back, sizeof(back), &backlen),
		    0);
		assert_int_equal(backlen, cases[i].inlen);
		assert_memory_equal(back, cases[i].in, backlen);
		buf_free(&b);
	}
}

static void
test_escape_round_trip_all_bytes(void **state)
{
	char in[256], out[300];
	size_t outlen;
	struct buf b;

	(void)state;
	for (int i = 0; i < 256; i++)
		in[i] = (char)i;
	buf_init(&b, 4096);
	assert_int_equal(dovecot_auth_escape(in, sizeof(in), &b), 0);
	assert_null(memchr(b.data, '\t', b.len));
	assert_null(memchr(b.data, '\n', b.len));
	assert_null(memchr(b.data, '\r', b.len));
	assert_null(memchr(b.data, '\0', b.len));
	assert_int_equal(dovecot_auth_unescape(b.data, b.len, out, sizeof(out), &outlen), 0);
	assert_int_equal(outlen, sizeof(in));
	assert_memory_equal(out, in, sizeof(in));
	buf_free(&b);
}

static void
test_unescape_bad(void **state)
{
	char out[8];
	size_t n;

	(void)state;
	/* a lone escape at the end */
	assert_int_equal(dovecot_auth_unescape("ab\001", 3, out, sizeof(out), &n), -1);
	/* does not fit (7 bytes + NUL) */
	assert_int_equal(dovecot_auth_unescape("12345678", 8, out, sizeof(out), &n), -1);
	assert_int_equal(dovecot_auth_unescape("1234567", 7, out, sizeof(out), &n), 0);
	/* unknown escapes write the character itself */
	assert_int_equal(dovecot_auth_unescape("\001x", 2, out, sizeof(out), &n), 0);
	assert_string_equal(out, "x");
}

static const struct {
	const char *line;
	int ret;
	enum dovecot_auth_kind kind;
	uint32_t id;
	const char *user; /* NULL: no user= */
	int temp, nologin, proxy;
} replies[] = {
    {"VERSION\t1\t2", 0, DOVECOT_AUTH_R_VERSION, 0, NULL, 0, 0, 0},
    {"MECH\tPLAIN\tplaintext", 0, DOVECOT_AUTH_R_MECH, 0, NULL, 0, 0, 0},
    {"MECH\tSCRAM-SHA-256-PLUS\tmutual-auth\tchannel-binding", 0, DOVECOT_AUTH_R_MECH, 0, NULL, 0,
        0, 0},
    {"SPID\t11297", 0, DOVECOT_AUTH_R_SPID, 0, NULL, 0, 0, 0},
    {"CUID\t1", 0, DOVECOT_AUTH_R_CUID, 0, NULL, 0, 0, 0},
    {"COOKIE\te062cbc973bdb098daec13911833f85b", 0, DOVECOT_AUTH_R_COOKIE, 0, NULL, 0, 0, 0},
    {"DONE", 0, DOVECOT_AUTH_R_DONE, 0, NULL, 0, 0, 0},
    {"OK\t1\tuser=bob@example.test", 0, DOVECOT_AUTH_R_OK, 1, "bob@example.test", 0, 0, 0},
    {"OK\t4294967295", 0, DOVECOT_AUTH_R_OK, 4294967295u, NULL, 0, 0, 0},
    {"OK\t7\tuser=a\001tb", -1, DOVECOT_AUTH_R_OK, 7, NULL, 0, 0, 0}, /* TAB in a name */
    {"OK\t7\tuser=a\001nb", -1, DOVECOT_AUTH_R_OK, 7, NULL, 0, 0, 0}, /* LF in a name */
    {"OK\t7\tuser=a\0011b", -1, DOVECOT_AUTH_R_OK, 7, NULL, 0, 0, 0},
    {"OK\t7\tuser=a\001@b", 0, DOVECOT_AUTH_R_OK, 7, "a@b", 0, 0, 0},
    {"OK\t8\tuser=x\tnologin\treason=go away", 0, DOVECOT_AUTH_R_OK, 8, "x", 0, 1, 0},
    {"OK\t8\tnologin=Y", 0, DOVECOT_AUTH_R_OK, 8, NULL, 0, 1, 0},
    {"OK\t9\tuser=x\tproxy\thost=10.0.0.1", 0, DOVECOT_AUTH_R_OK, 9, "x", 0, 0, 1},
    {"OK\t9\tproxy_maybe=y", 0, DOVECOT_AUTH_R_OK, 9, NULL, 0, 0, 1},
    {"OK\t9\tproxyfoo", 0, DOVECOT_AUTH_R_OK, 9, NULL, 0, 0, 0},
    {"FAIL\t2\tuser=bob@example.test", 0, DOVECOT_AUTH_R_FAIL, 2, "bob@example.test", 0, 0, 0},
    {"FAIL\t2", 0, DOVECOT_AUTH_R_FAIL, 2, NULL, 0, 0, 0},
    {"FAIL\t3\tcode=temp_fail\treason=db down", 0, DOVECOT_AUTH_R_FAIL, 3, NULL, 1, 0, 0},
    {"FAIL\t3\ttemp", 0, DOVECOT_AUTH_R_FAIL, 3, NULL, 1, 0, 0},
    {"FAIL\t3\tcode=authz_fail", 0, DOVECOT_AUTH_R_FAIL, 3, NULL, 0, 0, 0},
    {"FAIL\t3\ttemporary", 0, DOVECOT_AUTH_R_FAIL, 3, NULL, 0, 0, 0},
    {"FAIL\t3\t\t\tuser=z\t", 0, DOVECOT_AUTH_R_FAIL, 3, "z", 0, 0, 0},
    {"CONT\t5\tYmFzZTY0", 0, DOVECOT_AUTH_R_CONT, 5, NULL, 0, 0, 0},
    {"NOTICE\twhatever", 0, DOVECOT_AUTH_R_OTHER, 0, NULL, 0, 0, 0},
    {"", 0, DOVECOT_AUTH_R_OTHER, 0, NULL, 0, 0, 0},
    {"OK", -1, DOVECOT_AUTH_R_OK, 0, NULL, 0, 0, 0},
    {"OK\t", -1, DOVECOT_AUTH_R_OK, 0, NULL, 0, 0, 0},
    {"OK\t-1", -1, DOVECOT_AUTH_R_OK, 0, NULL, 0, 0, 0},
    {"OK\t4294967296", -1, DOVECOT_AUTH_R_OK, 0, NULL, 0, 0, 0},
    {"OK\t12345678901", -1, DOVECOT_AUTH_R_OK, 0, NULL, 0, 0, 0},
    {"FAIL\tx1", -1, DOVECOT_AUTH_R_FAIL, 0, NULL, 0, 0, 0},
    {"OK\t1\tuser=ab\001", -1, DOVECOT_AUTH_R_OK, 1, NULL, 0, 0, 0},
    {"OK\t1\r", -1, DOVECOT_AUTH_R_OK, 0, NULL, 0, 0, 0},
    {"VERSION\t1", -1, DOVECOT_AUTH_R_VERSION, 0, NULL, 0, 0, 0},
    {"VERSION\tone\t2", -1, DOVECOT_AUTH_R_VERSION, 0, NULL, 0, 0, 0},
    {"MECH", -1, DOVECOT_AUTH_R_MECH, 0, NULL, 0, 0, 0},
    {"MECH\t", -1, DOVECOT_AUTH_R_MECH, 0, NULL, 0, 0, 0},
};

static void
check_reply(size_t i, const char *line, size_t len)
{
	struct dovecot_auth_reply r;
	const char *errstr = NULL;
	int ret = dovecot_auth_parse_reply(line, len, &r, &errstr);

	if (ret != replies[i].ret)
		fail_msg(
		    "case %zu \"%s\": got %d (%s)", i, replies[i].line, ret, errstr ? errstr : "");
	if (ret == -1) {
		assert_non_null(errstr);
		return;
	}
	assert_int_equal(r.kind, replies[i].kind);
	assert_int_equal(r.id, replies[i].id);
	if (replies[i].user == NULL) {
		assert_false(r.has_user);
	} else {
		assert_true(r.has_user);
		assert_string_equal(r.user, replies[i].user);
	}
	assert_int_equal(r.temp, replies[i].temp);
	assert_int_equal(r.nologin, replies[i].nologin);
	assert_int_equal(r.proxy, replies[i].proxy);
}

static void
test_parse_reply(void **state)
{
	struct dovecot_auth_reply r;
	const char *errstr;
	char big[DOVECOT_AUTH_USER_MAX + 16];

	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
		check_reply(i, replies[i].line, strlen(replies[i].line));

	assert_int_equal(dovecot_auth_parse_reply("VERSION\t1\t3", 11, &r, &errstr), 0);
	assert_int_equal(r.major, 1);
	assert_int_equal(r.minor, 3);
	assert_int_equal(dovecot_auth_parse_reply("MECH\tLOGIN\tplaintext", 20, &r, &errstr), 0);
	assert_string_equal(r.mech, "LOGIN");
	{
		const char *l = "FAIL\t1\tcode=temp_fail\treason=a\001tb";

		assert_int_equal(dovecot_auth_parse_reply(l, strlen(l), &r, &errstr), 0);
	}
	assert_string_equal(r.code, "temp_fail");
	assert_string_equal(r.reason, "a?b"); /* control characters never reach logs */
	/* a NUL byte anywhere */
	assert_int_equal(dovecot_auth_parse_reply("OK\t1\0x", 6, &r, &errstr), -1);
	/* user= of the maximum length, and one byte more */
	memcpy(big, "OK\t1\tuser=", 10);
	memset(big + 10, 'u', DOVECOT_AUTH_USER_MAX);
	assert_int_equal(dovecot_auth_parse_reply(big, 10 + DOVECOT_AUTH_USER_MAX, &r, &errstr), 0);
	assert_int_equal(strlen(r.user), DOVECOT_AUTH_USER_MAX);
	big[10 + DOVECOT_AUTH_USER_MAX] = 'u';
	assert_int_equal(
	    dovecot_auth_parse_reply(big, 11 + DOVECOT_AUTH_USER_MAX, &r, &errstr), -1);
}

/* The whole table as one stream, fed one byte at a time through a splitter
 * on LF: each line must parse as it does alone. */
static void
test_parse_byte_at_a_time(void **state)
{
	char line[256];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const char *p = replies[i].line;
		size_t len = strlen(p);

		n = 0;
		for (size_t j = 0; j <= len; j++) {
			char ch = j < len ? p[j] : '\n';

			if (ch == '\n') {
				check_reply(i, line, n);
				break;
			}
			line[n++] = ch;
		}
	}
}

/* --- the client against a scripted fake Dovecot -------------------------- */

struct fake {
	int lfd;
	/* the answer to each AUTH: "<kind> TAB <id><rest> LF"; kind NULL: none */
	const char *kind, *rest;
	int other_id; /* answer with an id that was not asked */
	int requests; /* AUTH lines seen */
	char last_auth[512];
	int close_after; /* close each connection after this many requests (0: never) */
};

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	int fd;

	while ((fd = accept(f->lfd, NULL, NULL)) != -1) {
		char in[4096];
		size_t inlen = 0;
		int on_conn = 0;
		const char *hs = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
		                 "SPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n";

		if (write(fd, hs, strlen(hs)) < 0)
			break;
		for (;;) {
			ssize_t k = read(fd, in + inlen, sizeof(in) - inlen - 1);
			char *nl;

			if (k <= 0)
				break;
			inlen += (size_t)k;
			in[inlen] = '\0';
			while ((nl = strchr(in, '\n')) != NULL) {
				*nl = '\0';
				if (strncmp(in, "AUTH\t", 5) == 0) {
					char out[256];
					unsigned id = (unsigned)strtoul(in + 5, NULL, 10);
					int m;

					snprintf(f->last_auth, sizeof(f->last_auth), "%s", in);
					f->requests++;
					on_conn++;
					if (f->kind == NULL)
						break;
					m = snprintf(out, sizeof(out), "%s\t%u%s\n", f->kind,
					    f->other_id ? 999999u : id, f->rest);
					if (write(fd, out, (size_t)m) < 0)
						break;
				}
				inlen -= (size_t)(nl + 1 - in);
				memmove(in, nl + 1, inlen + 1);
			}
			if (f->close_after > 0 && on_conn >= f->close_after)
				break;
		}
		close(fd);
	}
	return NULL;
}

static void
test_client(void **state)
{
	static const struct {
		const char *kind, *rest;
		int other_id;
		enum dovecot_auth_result want;
		const char *user;
	} cases[] = {
	    {"OK", "\tuser=canon@example.test", 0, DOVECOT_AUTH_OK, "canon@example.test"},
	    {"OK", "", 0, DOVECOT_AUTH_OK, "Typed@Example.Test"},
	    {"FAIL", "\tuser=x", 0, DOVECOT_AUTH_FAIL, NULL},
	    {"FAIL", "\tcode=temp_fail", 0, DOVECOT_AUTH_TEMPFAIL, NULL},
	    {"FAIL", "\ttemp", 0, DOVECOT_AUTH_TEMPFAIL, NULL},
	    {"OK", "\tuser=x\tnologin", 0, DOVECOT_AUTH_FAIL, NULL},
	    {"OK", "\tproxy\thost=h\tnopassword", 0, DOVECOT_AUTH_FAIL, NULL},
	    {"CONT", "\tAAAA", 0, DOVECOT_AUTH_TEMPFAIL, NULL},
	    {"OK", "", 1, DOVECOT_AUTH_TEMPFAIL, NULL}, /* another id */
	    {"OK", "\tuser=a\001nb", 0, DOVECOT_AUTH_TEMPFAIL, NULL},
	    {NULL, NULL, 0, DOVECOT_AUTH_TEMPFAIL, NULL}, /* closed without an answer */
	};
	char path[108];
	struct sockaddr_un sun;
	struct fake f;
	pthread_t t;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/sg-test-dovecot-%ld.sock", (long)getpid());
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	memset(&f, 0, sizeof(f));
	f.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_not_equal(f.lfd, -1);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f.lfd, 8), 0);
	f.close_after = 1;
	assert_int_equal(pthread_create(&t, NULL, fake_run, &f), 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dovecot_auth *da = dovecot_auth_new(path);
		char user[DOVECOT_AUTH_USER_MAX + 1];
		enum dovecot_auth_result res;

		f.kind = cases[i].kind;
		f.rest = cases[i].rest;
		f.other_id = cases[i].other_id;
		res = dovecot_auth_verify(da, 42, "192.0.2.1", "Typed@Example.Test", 18,
		    "pw\twith tab", 11, user, sizeof(user));
		if (res != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, res, cases[i].want);
		if (cases[i].user != NULL)
			assert_string_equal(user, cases[i].user);
		/* the request: PLAIN, secured, session, resp last (base64 of
		 * \0Typed@Example.Test\0pw<TAB>with tab) */
		assert_string_equal(f.last_auth + strcspn(f.last_auth + 5, "\t") + 5,
		    "\tPLAIN\tservice=smtp\tsecured\tno-penalty\tsession=smtpgate-000000000000002a\trip=192.0.2.1"
		    "\tresp=AFR5cGVkQEV4YW1wbGUuVGVzdABwdwl3aXRoIHRhYg==");
		dovecot_auth_free(da);
	}

	/* a NUL in the password cannot be sent as PLAIN: FAIL, no request */
	{
		struct dovecot_auth *da = dovecot_auth_new(path);
		char user[DOVECOT_AUTH_USER_MAX + 1];
		int before = f.requests;

		assert_int_equal(
		    dovecot_auth_verify(da, 1, NULL, "u", 1, "a\0b", 3, user, sizeof(user)),
		    DOVECOT_AUTH_FAIL);
		assert_int_equal(f.requests, before);
		dovecot_auth_free(da);
	}

	/* nothing listening: TEMPFAIL */
	{
		struct dovecot_auth *da = dovecot_auth_new("/nonexistent/auth-client");
		char user[DOVECOT_AUTH_USER_MAX + 1], err[256];

		assert_int_equal(dovecot_auth_probe(da, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "/nonexistent/auth-client"));
		assert_int_equal(
		    dovecot_auth_verify(da, 1, NULL, "u", 1, "p", 1, user, sizeof(user)),
		    DOVECOT_AUTH_TEMPFAIL);
		dovecot_auth_free(da);
	}

	shutdown(f.lfd, SHUT_RDWR);
	close(f.lfd);
	pthread_join(t, NULL);
	unlink(path);
}

/* A pooled connection that Dovecot closed (restart) is retried once on a new
 * one, so the client sees no failure. */
static void
test_client_reconnects(void **state)
{
	char path[108];
	struct sockaddr_un sun;
	struct fake f;
	pthread_t t;
	struct dovecot_auth *da;
	char user[DOVECOT_AUTH_USER_MAX + 1];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/sg-test-dovecot-r%ld.sock", (long)getpid());
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	memset(&f, 0, sizeof(f));
	f.kind = "OK";
	f.rest = "";
	f.close_after = 1; /* every connection serves one request, then closes */
	f.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f.lfd, 8), 0);
	assert_int_equal(pthread_create(&t, NULL, fake_run, &f), 0);

	da = dovecot_auth_new(path);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    dovecot_auth_verify(da, 1, NULL, "u", 1, "p", 1, user, sizeof(user)),
		    DOVECOT_AUTH_OK);
	assert_int_equal(f.requests, 3);
	dovecot_auth_reset(da);
	assert_int_equal(
	    dovecot_auth_verify(da, 1, NULL, "u", 1, "p", 1, user, sizeof(user)), DOVECOT_AUTH_OK);
	dovecot_auth_free(da);

	shutdown(f.lfd, SHUT_RDWR);
	close(f.lfd);
	pthread_join(t, NULL);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_escape_round_trip_all_bytes),
	    cmocka_unit_test(test_unescape_bad),
	    cmocka_unit_test(test_parse_reply),
	    cmocka_unit_test(test_parse_byte_at_a_time),
	    cmocka_unit_test(test_client),
	    cmocka_unit_test(test_client_reconnects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for admin: the bearer check (admin_check_bearer) and a whole
 * request round trip through admin_call against a started listener, with and
 * without the token, under both auth modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "net/admin.h"
#include "net/loop.h"

static const char token[] = "0123456789abcdef0123456789abcdef-right";

static void
digest(const char *s, unsigned char md[32])
{
	unsigned len = 0;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL), 1);
	assert_int_equal(len, 32);
}

static void
test_check_bearer(void **state)
{
	static const struct {
		const char *h; /* NULL: no header */
		enum admin_bearer want;
	} rows[] = {
	    {NULL, ADMIN_BEARER_MISSING},
	    {"Bearer 0123456789abcdef0123456789abcdef-right", ADMIN_BEARER_OK},
	    {"bearer 0123456789abcdef0123456789abcdef-right", ADMIN_BEARER_OK},
	    {"BEARER   0123456789abcdef0123456789abcdef-right  ", ADMIN_BEARER_OK},
	    {"Bearer 0123456789abcdef0123456789abcdef-righ", ADMIN_BEARER_WRONG},
	    {"Bearer 0123456789abcdef0123456789abcdef-rightt", ADMIN_BEARER_WRONG},
	    {"Bearer 1123456789abcdef0123456789abcdef-right", ADMIN_BEARER_WRONG},
	    {"Bearer x", ADMIN_BEARER_WRONG},
	    {"Bearer ", ADMIN_BEARER_NOT_BEARER},
	    {"Bearer", ADMIN_BEARER_NOT_BEARER},
	    {"", ADMIN_BEARER_NOT_BEARER},
	    {"Basic YWRtaW46MDEyMw==", ADMIN_BEARER_NOT_BEARER},
	    {"Bearer0123456789abcdef0123456789abcdef-right", ADMIN_BEARER_NOT_BEARER},
	    {"0123456789abcdef0123456789abcdef-right", ADMIN_BEARER_NOT_BEARER},
	};
	unsigned char md[32];

	digest(token, md);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (admin_check_bearer(rows[i].h, md) != rows[i].want)
			fail_msg("row %zu (%s): got %d", i, rows[i].h ? rows[i].h : "(none)",
			    (int)admin_check_bearer(rows[i].h, md));
	}
}

static int
echo_cb(void *arg, const char *method, const char *path, const char *query, const char *body,
    size_t bodylen, struct buf *out, const char **content_type_r)
{
	return buf_printf(out, "%s %s\n", method, path) == -1 ? 500 : 200;
}

/* Status of one call; body into got (the first 255 bytes). */
static int
call(const struct sockaddr_in *sin, const char *tok, const char *method, const char *target,
    char *got, size_t gotlen)
{
	struct buf out;
	char err[256];
	int status = 0;

	buf_init(&out, 4096);
	if (admin_call((const struct sockaddr *)sin, sizeof(*sin), tok, method, target, NULL, 0,
	        &out, &status, err, sizeof(err)) == -1)
		fail_msg("admin_call: %s", err);
	snprintf(got, gotlen, "%.*s", (int)out.len, out.data != NULL ? out.data : "");
	buf_free(&out);
	return status;
}

static void
test_round_trip(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct admin *a;
	char err[256], got[256];
	int fd;

	loop_global_init();
	/* a free port: bind 0, read it, close (a race only with other tests) */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);

	a = admin_new();
	admin_route(a, "/open", ADMIN_ROUTE_OPEN_GET, echo_cb, NULL);
	admin_route(a, "/closed", 0, echo_cb, NULL);
	admin_set_auth(a, token, ADMIN_AUTH_CHANGES);
	if (admin_start(a, (struct sockaddr *)&sin, sizeof(sin), err, sizeof(err)) == -1)
		fail_msg("%s", err);

	assert_int_equal(call(&sin, NULL, "GET", "/open", got, sizeof(got)), 200);
	assert_int_equal(call(&sin, NULL, "POST", "/open", got, sizeof(got)), 401);
	assert_non_null(strstr(got, "\"error\""));
	assert_int_equal(call(&sin, NULL, "GET", "/closed", got, sizeof(got)), 401);
	assert_int_equal(call(&sin, "wrong-token", "DELETE", "/closed/x", got, sizeof(got)), 401);
	assert_non_null(strstr(got, "invalid token"));
	assert_int_equal(call(&sin, token, "DELETE", "/closed/x", got, sizeof(got)), 200);
	assert_string_equal(got, "DELETE /closed/x\n");
	assert_int_equal(call(&sin, NULL, "GET", "/nothing", got, sizeof(got)), 404);

	/* every request, and a new token takes over at once (SIGHUP) */
	admin_set_auth(a, "another-token-another-token-another-token", ADMIN_AUTH_ALL);
	assert_int_equal(call(&sin, NULL, "GET", "/open", got, sizeof(got)), 401);
	assert_int_equal(call(&sin, NULL, "GET", "/nothing", got, sizeof(got)), 401);
	assert_int_equal(call(&sin, token, "GET", "/open", got, sizeof(got)), 401);
	assert_int_equal(call(&sin, "another-token-another-token-another-token", "GET", "/open",
	                     got, sizeof(got)),
	    200);

	/* no token: as before authentication existed */
	admin_set_auth(a, NULL, ADMIN_AUTH_ALL);
	assert_int_equal(call(&sin, NULL, "POST", "/closed", got, sizeof(got)), 200);
	admin_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_bearer),
	    cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

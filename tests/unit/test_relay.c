/* Unit tests for policy/relay: the decision table of DESIGN 5.2 / 5.5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "lib/xalloc.h"
#include "policy/relay.h"

static void
test_mail(void **state)
{
	static const struct {
		enum conf_tls_mode tls;
		enum conf_auth_mode auth;
		bool in_tls, authed;
		enum smtp_reply_id want;
	} cases[] = {
	    {CONF_TLS_STARTTLS, CONF_AUTH_REQUIRED, false, false, SMTP_R_STARTTLS_REQUIRED},
	    {CONF_TLS_STARTTLS, CONF_AUTH_REQUIRED, true, false, SMTP_R_AUTH_REQUIRED},
	    {CONF_TLS_STARTTLS, CONF_AUTH_REQUIRED, true, true, SMTP_R_OK},
	    {CONF_TLS_IMPLICIT, CONF_AUTH_REQUIRED, true, false, SMTP_R_AUTH_REQUIRED},
	    {CONF_TLS_NONE, CONF_AUTH_REQUIRED, false, false, SMTP_R_AUTH_REQUIRED},
	    {CONF_TLS_STARTTLS, CONF_AUTH_OPTIONAL, false, false, SMTP_R_OK},
	    {CONF_TLS_NONE, CONF_AUTH_OFF, false, false, SMTP_R_OK},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf_listen l;

		memset(&l, 0, sizeof(l));
		l.tls = cases[i].tls;
		l.auth = cases[i].auth;
		if (relay_check_mail(&l, cases[i].in_tls, cases[i].authed) != cases[i].want)
			fail_msg("case %zu", i);
	}
}

static void
test_rcpt(void **state)
{
	char text[] = "[listen a]\naddress = 127.0.0.1:1\ntls = none\nauth = off\nrelay = local\n"
	              "[domains]\nlocal = example.test\n";
	char err[256];
	struct conf *c = conf_parse_text("/t.conf", text, err, sizeof(err));
	struct conf_listen l;

	assert_non_null(c);
	memset(&l, 0, sizeof(l));
	l.relay = CONF_RELAY_LOCAL;
	assert_int_equal(relay_check_rcpt(c, &l, false, "example.test"), SMTP_R_OK);
	assert_int_equal(relay_check_rcpt(c, &l, false, "EXAMPLE.test"), SMTP_R_OK);
	assert_int_equal(relay_check_rcpt(c, &l, false, ""), SMTP_R_OK); /* postmaster */
	assert_int_equal(relay_check_rcpt(c, &l, false, "example.net"), SMTP_R_RELAY_DENIED);
	assert_int_equal(relay_check_rcpt(c, &l, false, "sub.example.test"), SMTP_R_RELAY_DENIED);
	assert_int_equal(relay_check_rcpt(c, &l, true, "example.net"), SMTP_R_OK);
	l.relay = CONF_RELAY_AUTHENTICATED;
	assert_int_equal(relay_check_rcpt(c, &l, false, "example.test"), SMTP_R_RELAY_DENIED);
	assert_int_equal(relay_check_rcpt(c, &l, true, "example.net"), SMTP_R_OK);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mail),
	    cmocka_unit_test(test_rcpt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

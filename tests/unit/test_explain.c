/*
 * Unit tests for explain/: the providers' refusals (kb_provider.c) ahead of
 * the generic reply map, the field-wise enhanced-code match, and causes that
 * quote the reply's own codes (finding_cause_render).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "explain/finding.h"
#include "explain/kb_provider.h"
#include "explain/reply_map.h"

static void
test_provider_replies(void **state)
{
	static const struct {
		int code;
		const char *enh, *cmd, *text, *id, *provider;
	} cases[] = {
	    /* whole replies: the words are on a line before the last */
	    {534, "5.7.9", "AUTH",
	        "534-5.7.9 Application-specific password required. Learn more at\n"
	        "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor x - gsmtp",
	        "auth-app-password-required", "Gmail"},
	    {534, "5.7.14", "AUTH",
	        "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1>\n"
	        "534-5.7.14 x1DeI0bGyNqNHRRUuucw0k95Ph-CY> Please log in via your web browser "
	        "and\n534-5.7.14 then try again.\n534 5.7.14  https://support.google.com/mail/"
	        "answer/78754 x - gsmtp",
	        "auth-web-login-required", "Gmail"},
	    {535, "5.7.139", "AUTH",
	        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
	        "for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
	        "auth-smtp-disabled", "Microsoft 365"},
	    {535, "5.7.139", "AUTH",
	        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
	        "auth-smtp-disabled", "Microsoft 365 / Outlook.com"},
	    {535, "5.7.0", "AUTH", "535 5.7.0 (#AUTH005) Too many bad auth attempts.",
	        "auth-too-many-attempts", "Yahoo"},
	    {454, "4.7.0", "AUTH",
	        "454 4.7.0 Too many login attempts, please try again later. x - gsmtp",
	        "auth-too-many-attempts", "Gmail"},
	    {554, "", "DATA",
	        "554 Message rejected: Email address is not verified. The following identities "
	        "failed the check in region US-WEST-2: email",
	        "sender-not-verified", "Amazon SES"},
	    {554, "5.2.0", "DATA",
	        "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException."
	        "MapiExceptionSendAsDenied; Failed to process message",
	        "sender-not-verified", "Microsoft 365"},
	    {535, "", "AUTH", "535 Authentication Credentials Invalid", "auth-credentials-invalid",
	        "Amazon SES"},
	    {530, "5.7.57", "MAIL", "530 5.7.57 Client not authenticated to send mail",
	        "auth-required", "Microsoft 365"},
	    {535, "5.7.3", "AUTH", "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0002]",
	        "auth-credentials-invalid", "Microsoft 365"},
	    /* case does not matter */
	    {534, "5.7.9", "AUTH", "534 5.7.9 application-specific PASSWORD required",
	        "auth-app-password-required", "Gmail"},
	    /* smtpgate's own refusals: generic rows, no provider */
	    {535, "5.7.8", "AUTH", "535 5.7.8 Authentication credentials invalid",
	        "auth-credentials-invalid", NULL},
	    {454, "4.7.0", "AUTH",
	        "454 4.7.0 Temporary authentication failure: too many failed attempts, try again "
	        "later",
	        "auth-too-many-attempts", NULL},
	    {454, "4.7.0", "AUTH", "454 4.7.0 Temporary authentication failure",
	        "auth-temporary-failure", NULL},
	    {421, "4.7.0", "", "421 4.7.0 Too many authentication failures, try again later",
	        "auth-too-many-attempts", NULL},
	    {421, "4.7.0", "", "421 4.7.0 Too many connections, try again later",
	        "service-unavailable", NULL},
	    /* the right words with the wrong codes are not the provider's reply */
	    {535, "5.7.8", "AUTH", "535 5.7.8 Application-specific password required",
	        "auth-credentials-invalid", NULL},
	    {535, "5.7.1", "AUTH", "535 5.7.1 SmtpClientAuthentication is disabled for the Tenant",
	        "auth-credentials-invalid", NULL},
	    {534, "5.7.9", "AUTH", "534 5.7.9 Authentication mechanism is too weak",
	        "auth-mechanism-too-weak", NULL},
	    /* unknown words keep the generic finding */
	    {535, "5.7.139", "AUTH", "535 5.7.139 Authentication unsuccessful, for a new reason",
	        "auth-credentials-invalid", NULL},
	    {554, "5.7.1", "RCPT", "554 5.7.1 Relay access denied", "relay-denied", NULL},
	    /* "5.7.1" is a field, not a prefix: 5.7.139 is not 5.7.1 */
	    {550, "5.7.139", "RCPT", "550 5.7.139 no", "recipient-rejected", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct finding_reply r;
		const char *id =
		    reply_map_explain(cases[i].code, cases[i].enh, cases[i].cmd, cases[i].text, &r);

		if (id == NULL || strcmp(id, cases[i].id) != 0)
			fail_msg("case %zu: got %s, want %s", i, id ? id : "NULL", cases[i].id);
		assert_non_null(finding_kb_find(id));
		assert_string_equal(
		    reply_map_find(cases[i].code, cases[i].enh, cases[i].cmd, cases[i].text), id);
		assert_int_equal(r.code, cases[i].code);
		assert_string_equal(r.enh, cases[i].enh);
		if (cases[i].provider == NULL) {
			assert_null(r.provider);
			assert_null(r.cause);
			assert_null(r.fix);
			assert_null(r.help);
		} else {
			if (r.provider == NULL || strcmp(r.provider, cases[i].provider) != 0)
				fail_msg("case %zu: provider %s, want %s", i,
				    r.provider ? r.provider : "NULL", cases[i].provider);
			assert_non_null(r.cause);
			assert_non_null(r.fix);
		}
	}
}

static void
test_cause_quotes_reply_codes(void **state)
{
	const struct finding_kb *kb = finding_kb_find("auth-credentials-invalid");
	struct finding_reply r;
	char out[FINDING_CAUSE_MAX];

	(void)state;
	/* the reply's codes, never a fixed 5.7.8 */
	(void)reply_map_explain(535, "5.7.139", "AUTH", "535 5.7.139 something new", &r);
	finding_cause_render(kb, &r, out, sizeof(out));
	assert_non_null(strstr(out, "(535 5.7.139)"));
	assert_null(strstr(out, "5.7.8"));
	assert_null(strstr(out, "{reply}"));
	/* no enhanced code: the code alone */
	(void)reply_map_explain(535, "", "AUTH", "535 no", &r);
	finding_cause_render(kb, &r, out, sizeof(out));
	assert_non_null(strstr(out, "password (535):"));
	/* not from a reply: no codes at all */
	finding_cause_render(kb, NULL, out, sizeof(out));
	assert_non_null(strstr(out, "password: a wrong"));
	assert_null(strchr(out, '{'));
	/* a provider's cause quotes the codes too */
	(void)reply_map_explain(
	    534, "5.7.9", "AUTH", "534 5.7.9 Application-specific password required", &r);
	finding_cause_render(finding_kb_find("auth-app-password-required"), &r, out, sizeof(out));
	assert_non_null(strstr(out, "Gmail refuses the account password (534 5.7.9):"));
	assert_string_equal(
	    finding_fix_text(finding_kb_find("auth-app-password-required"), &r), r.fix);
	/* a short buffer is cut, never left unterminated */
	finding_cause_render(kb, &r, out, 8);
	assert_int_equal(strlen(out), 7);
}

/* No cause that explains a received reply (probe, providers) keeps a fixed
 * enhanced code or an unexpanded mark. (audit's causes describe smtpgate's
 * own replies: their codes are facts about it.) */
static void
test_kb_causes_render(void **state)
{
	static const struct finding_kb *const tables[] = {finding_kb_probe, finding_kb_provider};
	char out[FINDING_CAUSE_MAX];

	(void)state;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct finding_kb *k = tables[t]; k->id != NULL; k++) {
			finding_cause_render(k, NULL, out, sizeof(out));
			if (strchr(out, '{') != NULL || strstr(out, " 5.7.") != NULL ||
			    strstr(out, " 4.7.") != NULL)
				fail_msg("%s: %s", k->id, out);
		}
	}
}

/* Findings carry the reply: JSON gives provider and help only when known. */
static void
test_findings_json(void **state)
{
	struct findings f;
	struct finding_reply r;
	json_t *j;

	(void)state;
	findings_init(&f);
	(void)reply_map_explain(534, "5.7.9", "AUTH",
	    "534-5.7.9 Application-specific password required. Learn more at\n534 5.7.9 x", &r);
	findings_add_reply(&f, "auth-app-password-required", &r, -1, "AUTH %s", "534-5.7.9 a\nb");
	findings_add(&f, "auth-not-offered", "none");
	j = findings_json(&f);
	assert_int_equal(json_array_size(j), 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(j, 0), "provider")), "Gmail");
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "help")),
	    "https://support.google.com/mail/?p=InvalidSecondFactor");
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "evidence")),
	    "AUTH 534-5.7.9 a\nb");
	assert_int_equal(json_object_size(json_array_get(j, 1)), 5);
	json_decref(j);
	findings_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_provider_replies),
	    cmocka_unit_test(test_cause_quotes_reply_codes),
	    cmocka_unit_test(test_kb_causes_render),
	    cmocka_unit_test(test_findings_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

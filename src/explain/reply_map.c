/*
 * reply_map: received reply -> finding id (see reply_map.h). One table,
 * searched in order; the first row that matches wins, so specific rows
 * (code + enhanced code + command) come before general ones (code only,
 * then class + command).
 */
#include "explain/reply_map.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "explain/kb_provider.h"

struct reply_map_row {
	int code; /* exact code, or 4 / 5 for any code of that class */
	const char *enh; /* leading fields of the enhanced code, or NULL */
	const char *cmd; /* verb, or NULL for any */
	const char *text; /* substring of the text (case-insensitive), or NULL */
	const char *id;
};

static const struct reply_map_row reply_map_rows[] = {
    /* RFC 3207 4, RFC 4954 6: 530 before STARTTLS, or without AUTH */
    {530, NULL, NULL, "STARTTLS", "encryption-required"},
    {530, NULL, "AUTH", NULL, "encryption-required"},
    {530, NULL, NULL, NULL, "auth-required"},
    /* smtpgate's own refusals after failed logins (smtp_reply.c): the
     * per-account throttle and the ban */
    {454, "4.7.0", "AUTH", "too many failed attempts", "auth-too-many-attempts"},
    {421, "4.7.0", NULL, "Too many authentication failures", "auth-too-many-attempts"},
    {538, NULL, NULL, NULL, "encryption-required"},
    {534, NULL, NULL, NULL, "auth-mechanism-too-weak"},
    {535, NULL, NULL, NULL, "auth-credentials-invalid"},
    {432, NULL, NULL, NULL, "password-transition-needed"},
    {454, NULL, "AUTH", NULL, "auth-temporary-failure"},
    {454, NULL, "STARTTLS", NULL, "tls-unavailable"},
    {504, NULL, "AUTH", NULL, "auth-mechanism-unsupported"},
    {421, NULL, NULL, NULL, "service-unavailable"},
    {554, NULL, "", NULL, "service-unavailable"}, /* RFC 5321 3.1: no service here */
    {552, NULL, NULL, NULL, "message-too-large"},
    {452, "4.3.1", NULL, NULL, "server-temporary-failure"},
    /* policy refusals (RFC 3463 5.7.1): relaying or sender ownership */
    {553, "5.7.1", "MAIL", NULL, "sender-rejected"},
    {550, "5.7.1", "MAIL", NULL, "sender-rejected"},
    {554, "5.7.1", "MAIL", NULL, "sender-rejected"},
    {553, "5.7.1", "RCPT", "sender", "sender-rejected"},
    {553, "5.7.1", NULL, NULL, "sender-rejected"},
    {550, "5.7.1", "RCPT", NULL, "relay-denied"},
    {554, "5.7.1", "RCPT", NULL, "relay-denied"},
    {554, "5.7.1", NULL, "relay", "relay-denied"},
    {550, NULL, "RCPT", "relay", "relay-denied"},
    {554, NULL, "RCPT", "relay", "relay-denied"},
    {500, NULL, NULL, NULL, "command-syntax-error"},
    {501, NULL, NULL, NULL, "command-syntax-error"},
    {502, NULL, NULL, NULL, "command-not-implemented"},
    {503, NULL, NULL, NULL, "bad-sequence"},
    {504, NULL, NULL, NULL, "parameter-not-implemented"},
    {555, NULL, NULL, NULL, "parameter-not-implemented"},
    /* anything else, by class and command */
    {5, NULL, "MAIL", NULL, "sender-rejected"},
    {5, NULL, "RCPT", NULL, "recipient-rejected"},
    {5, NULL, "DATA", NULL, "message-rejected"},
    {5, NULL, "BDAT", NULL, "message-rejected"},
    {5, NULL, "", NULL, "service-unavailable"},
    {4, NULL, NULL, NULL, "server-temporary-failure"},
};

static bool
reply_map_has(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; hay != NULL && *hay != '\0'; hay++) {
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	}
	return false;
}

/* RFC 3463 fields: "5.7.1" covers "5.7.1" but not "5.7.139". */
static bool
reply_map_enh_matches(const char *want, const char *enh)
{
	size_t n = strlen(want);

	return enh != NULL && strncmp(enh, want, n) == 0 && (enh[n] == '\0' || enh[n] == '.');
}

static const char *
reply_map_find_generic(int code, const char *enh, const char *cmd, const char *text)
{
	for (size_t i = 0; i < sizeof(reply_map_rows) / sizeof(reply_map_rows[0]); i++) {
		const struct reply_map_row *r = &reply_map_rows[i];

		if (r->code < 10 ? r->code != code / 100 : r->code != code)
			continue;
		if (r->enh != NULL && !reply_map_enh_matches(r->enh, enh))
			continue;
		if (r->cmd != NULL && (cmd == NULL || strcasecmp(cmd, r->cmd) != 0))
			continue;
		if (r->text != NULL && !reply_map_has(text, r->text))
			continue;
		return r->id;
	}
	return NULL;
}

const char *
reply_map_explain(
    int code, const char *enh, const char *cmd, const char *text, struct finding_reply *r)
{
	const char *id;

	memset(r, 0, sizeof(*r));
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh != NULL ? enh : "");
	if (code < 400)
		return NULL;
	id = kb_provider_find(code, enh, text, r);
	return id != NULL ? id : reply_map_find_generic(code, enh, cmd, text);
}

const char *
reply_map_find(int code, const char *enh, const char *cmd, const char *text)
{
	struct finding_reply r;

	return reply_map_explain(code, enh, cmd, text, &r);
}

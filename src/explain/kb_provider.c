/*
 * kb_provider: the providers' refusals (see kb_provider.h). One row per
 * known reply; the first row that matches wins. A row matches on the exact
 * code, the enhanced code (field by field: "5.7.1" is not a prefix of
 * "5.7.139"; "" means the reply must have none) and words that the reply
 * carries somewhere in any of its lines (case-insensitive). Each row cites
 * where its reply text comes from: the provider's documentation or a public
 * transcript. Reply texts are facts: copy them, never paraphrase them.
 */
#include "explain/kb_provider.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/*
 * The findings the providers' refusals brought in (ids in doc/findings.md);
 * the rows below give each provider's own cause and fix, these are the
 * words for any other server that says the same.
 */
const struct finding_kb finding_kb_provider[] = {
    {"auth-app-password-required", FINDING_ERROR,
        "The server refuses the account's own password{reply}: the account has two-step "
        "verification (MFA), and the provider then takes only app passwords or OAuth from mail "
        "clients.",
        "Create an app password in the provider's account security settings and use it instead "
        "of the account password (for a smarthost: in the [relay] credentials file), or sign in "
        "with OAuth (XOAUTH2/OAUTHBEARER)."},
    {"auth-smtp-disabled", FINDING_ERROR,
        "The provider has authenticated SMTP (or password sign-in over SMTP) turned off for this "
        "account or organization{reply}: no password is accepted, however right it is.",
        "Have an administrator turn authenticated SMTP on for the mailbox (and the "
        "organization), or sign in with OAuth where the provider accepts it."},
    {"auth-web-login-required", FINDING_ERROR,
        "The provider blocked this sign-in as suspicious{reply} and wants the account holder to "
        "confirm it in a web browser first.",
        "Sign in to the account once with a web browser, confirm the sign-in the provider asks "
        "about, then retry; prefer an app password or OAuth to the account password."},
    {"auth-too-many-attempts", FINDING_ERROR,
        "The server refuses logins for now{reply} after too many attempts or failures for this "
        "account or client (a throttle or a lockout).",
        "Wait before retrying (retries keep the lock on); stop clients that keep trying a wrong "
        "or old password; reuse one authenticated connection for many messages."},
    {"sender-not-verified", FINDING_ERROR,
        "The sending service refused the sender{reply}: the From or envelope sender address is "
        "not a verified identity of this account, or the account may not send as it.",
        "Verify the sender address or its domain with the provider, or send from an address the "
        "account owns or may send as."},
    {NULL, FINDING_INFO, NULL, NULL},
};

struct kb_provider_row {
	int code;
	const char *enh; /* NULL: any; "": none */
	const char *words; /* in the reply, case-insensitive */
	const char *id; /* finding id (kb_probe.c) */
	const char *provider;
	const char *cause; /* may hold "{reply}" (finding_cause_render) */
	const char *fix;
	const char *help; /* the page the reply itself points to, or NULL */
};

#define KB_PROVIDER_GOOGLE_APP_PASSWORD                                                            \
	"Create an app password for this client (Google Account, Security, 2-Step Verification, "  \
	"App passwords: https://myaccount.google.com/apppasswords) and use it instead of the "     \
	"account password, without the spaces Google shows between its groups; or sign in with "   \
	"OAuth (XOAUTH2). For a smarthost, put the app password in the [relay] credentials file."

#define KB_PROVIDER_MS_SMTP_AUTH                                                                   \
	"An administrator turns authenticated SMTP on for this mailbox (Microsoft 365 admin "      \
	"center, Users, Active users, the user, Mail, Manage email apps, Authenticated SMTP; or "  \
	"Set-CASMailbox -Identity USER -SmtpClientAuthenticationDisabled $false) and, when the "   \
	"whole tenant has it off, for the tenant (Exchange admin center, Settings, Mail flow: "    \
	"clear \"Turn off SMTP AUTH protocol for your organization\"; or Set-TransportConfig "     \
	"-SmtpClientAuthenticationDisabled $false); changes take up to an hour. Or sign in with "  \
	"OAuth (XOAUTH2), which Microsoft keeps supporting."

static const struct kb_provider_row kb_provider_rows[] = {
    /* --- auth-app-password-required ------------------------------------------ */
    /* nodemailer/nodemailer#1116: "534-5.7.9 Application-specific password
     * required. Learn more at" / "534 5.7.9
     * https://support.google.com/mail/?p=InvalidSecondFactor o13sm2119833lfg.90 - gsmtp";
     * newer: "... For more information, go to" (Der-Henning/tgtg#517) */
    {534, "5.7.9", "Application-specific password required", "auth-app-password-required", "Gmail",
        "Gmail refuses the account password{reply}: the Google account has 2-Step Verification "
        "on, and then Google takes no account password from mail clients, only an app password "
        "or OAuth.",
        KB_PROVIDER_GOOGLE_APP_PASSWORD, "https://support.google.com/mail/?p=InvalidSecondFactor"},
    /* --- auth-web-login-required ---------------------------------------------- */
    /* firebase/functions-samples#39: "534-5.7.14
     * <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=..." ... "534-5.7.14
     * x1DeI0bGyNqNHRRUuucw0k95Ph-CY> Please log in via your web browser and" / "534-5.7.14
     * then try again." / "534-5.7.14  Learn more at" / "534 5.7.14
     * https://support.google.com/mail/answer/78754 100sm8943270iot.39 - gsmtp" */
    {534, "5.7.14", "Please log in via your web browser", "auth-web-login-required", "Gmail",
        "Google blocked this sign-in{reply} as suspicious (a new place, device or client) and "
        "wants the account holder to confirm it in a web browser first.",
        "Sign in to the account once in a web browser (from the same network if you can), "
        "confirm the sign-in Google asks about (https://myaccount.google.com/notifications), then "
        "retry; use an app password or OAuth (XOAUTH2) rather than the account password.",
        "https://support.google.com/mail/answer/78754"},
    /* nodemailer/nodemailer#653 (2016): "534-5.7.9 Please log in with your
     * web browser and then try again..." */
    {534, "5.7.9", "Please log in with your web browser", "auth-web-login-required", "Gmail",
        "Google blocked this sign-in{reply} as suspicious (a new place, device or client) and "
        "wants the account holder to confirm it in a web browser first.",
        "Sign in to the account once in a web browser, confirm the sign-in Google asks about "
        "(https://myaccount.google.com/notifications), then retry; use an app password or OAuth "
        "(XOAUTH2) rather than the account password.",
        NULL},
    /* --- auth-smtp-disabled ----------------------------------------------------- */
    /* simonrob/email-oauth2-proxy#193: "535 5.7.139 Authentication
     * unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit
     * https://aka.ms/smtp_auth_disabled for more information.
     * [MN2PR05CA0004.namprd05.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]" */
    {535, "5.7.139", "SmtpClientAuthentication is disabled for the Tenant", "auth-smtp-disabled",
        "Microsoft 365",
        "Microsoft 365 has authenticated SMTP (SMTP AUTH) turned off for the whole tenant{reply}, "
        "the default for tenants created since 2020: no password or token is accepted over SMTP, "
        "however right it is.",
        KB_PROVIDER_MS_SMTP_AUTH, "https://aka.ms/smtp_auth_disabled"},
    /* the mailbox form, as quoted in public troubleshooting notes: "535
     * 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is
     * disabled for the Mailbox" */
    {535, "5.7.139", "SmtpClientAuthentication is disabled for the Mailbox", "auth-smtp-disabled",
        "Microsoft 365",
        "Microsoft 365 has authenticated SMTP (SMTP AUTH) turned off for this mailbox{reply}: no "
        "password or token is accepted over SMTP for it, however right it is.",
        KB_PROVIDER_MS_SMTP_AUTH, "https://aka.ms/smtp_auth_disabled"},
    /* nodemailer/nodemailer#1714 (Outlook.com): "535 5.7.139 Authentication
     * unsuccessful, basic authentication is disabled.
     * [PN0PR01CA0024.INDPRD01.PROD.OUTLOOK.COM 2025-01-26T18:54:30.055Z 08DD3DD7D75D7743]" */
    {535, "5.7.139", "basic authentication is disabled", "auth-smtp-disabled",
        "Microsoft 365 / Outlook.com",
        "Microsoft refuses password sign-in (basic authentication) over SMTP for this account or "
        "tenant{reply}: only OAuth is accepted, whatever the password.",
        "Sign in with OAuth (XOAUTH2 with a token for https://outlook.office.com/SMTP.Send); for a "
        "Microsoft 365 tenant an administrator may instead allow authenticated SMTP for the "
        "mailbox (Manage email apps, Authenticated SMTP) where the tenant's policy permits.",
        NULL},
    /* quoted in public Microsoft 365 troubleshooting guides: "535 5.7.139
     * Authentication unsuccessful, user is locked by your organization's
     * security defaults policy." */
    {535, "5.7.139", "security defaults policy", "auth-smtp-disabled", "Microsoft 365",
        "The tenant's security defaults block password sign-in over SMTP{reply}, whatever the "
        "mailbox settings say.",
        "An administrator turns security defaults off and replaces them with Conditional Access "
        "policies that allow this sender (Microsoft Entra admin center, Properties, Manage "
        "security defaults), or the client signs in with OAuth (XOAUTH2).",
        NULL},
    /* the same guides, and gophish/gophish#3220 (in Portuguese): "535 5.7.139
     * Authentication unsuccessful, the request did not meet the criteria to be
     * authenticated successfully. Contact your administrator." */
    {535, "5.7.139", "did not meet the criteria to be authenticated", "auth-smtp-disabled",
        "Microsoft 365",
        "A Conditional Access policy of the tenant blocked this password sign-in over SMTP{reply} "
        "(legacy authentication blocked, or a location or device rule).",
        "An administrator excludes this account from the blocking Conditional Access policy or "
        "allows SMTP AUTH for it; or the client signs in with OAuth (XOAUTH2).",
        NULL},
    /* Exchange Online's retirement of basic auth for client submission, as
     * quoted in OpenCTI-Platform/opencti#12069: "550 5.7.30 Basic
     * authentication is not supported for Client Submission." */
    {550, "5.7.30", "Basic authentication is not supported", "auth-smtp-disabled", "Microsoft 365",
        "Exchange Online no longer accepts passwords (basic authentication) for SMTP "
        "submission{reply}: only OAuth.",
        "Sign in with OAuth (XOAUTH2 with a token for https://outlook.office.com/SMTP.Send), or "
        "send through another route (a connector for devices, or Microsoft Graph).",
        NULL},
    /* --- auth-too-many-attempts --------------------------------------------------- */
    /* PHPMailer/PHPMailer#2034: "535 5.7.0 (#AUTH005) Too many bad auth
     * attempts."; Yahoo gives it for the account password where it wants an
     * app password (nodemailer/nodemailer#1112) */
    {535, "5.7.0", "(#AUTH005)", "auth-too-many-attempts", "Yahoo",
        "Yahoo refuses the login{reply} after bad attempts; Yahoo gives the same answer at the "
        "first attempt when the account password is used, since it takes only app passwords from "
        "mail clients.",
        "Create an app password (Yahoo Account Info, Account Security, Generate app password) "
        "and use it instead of the account password; then wait before retrying, and stop "
        "clients that keep trying an old password.",
        NULL},
    /* pivorakmeetup/pivorak-web-app#281: "454 4.7.0 Too many login attempts,
     * please try again later. f67sm20755463wmd.0 - gsmtp"; AnalogJ/justvanish#13:
     * "454 4.7.0 Too many login attempts, please try again later. Learn more at" /
     * "4.7.0  https://support.google.com/mail/answer/7126229 ... - gsmtp" */
    {454, "4.7.0", "Too many login attempts", "auth-too-many-attempts", "Gmail",
        "Gmail throttles logins to this account{reply}: too many sign-ins in a short time (one "
        "per message or connection, or failed ones).",
        "Wait (minutes to an hour) before retrying; reuse one authenticated connection for many "
        "messages instead of logging in for each; stop clients that keep trying a wrong or old "
        "password; use an app password or OAuth.",
        "https://support.google.com/mail/answer/7126229"},
    /* --- sender-not-verified ---------------------------------------------------- */
    /* sul-dlss/dlme#813: "554 Message rejected: Email address is not verified.
     * The following identities failed the check in region US-WEST-2: email" */
    {554, NULL, "Email address is not verified", "sender-not-verified", "Amazon SES",
        "Amazon SES refused the message{reply}: the sender address (From, Sender, Return-Path) or "
        "its domain is not a verified identity in this region; in the SES sandbox every recipient "
        "must be verified too.",
        "Verify the sender address or its domain in the SES console of the region whose SMTP "
        "endpoint you use (Configuration, Identities); in the sandbox verify the recipients or "
        "request production access. Identities are per region.",
        NULL},
    /* MicrosoftDocs/OfficeDocs-Support#1187: "554 5.2.0
     * STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed
     * to process message due to a permanent exception with message Cannot submit message." */
    {554, "5.2.0", "SendAsDeniedException", "sender-not-verified", "Microsoft 365",
        "Microsoft 365 refused to send as this sender{reply}: the authenticated mailbox has no "
        "Send As right for the From address.",
        "Send with the authenticated mailbox's own address as From (and MAIL FROM), or have an "
        "administrator grant this mailbox Send As on the other address (Exchange admin center, "
        "Recipients, the mailbox, Delegation, Send as).",
        NULL},
    /* gophish/gophish#2900: "554 5.2.252 SendAsDenied; delightgx46@outlook.com
     * not allowed to send as security@sfb.com;
     * STOREDRV.Submission.Exception:SendAsDeniedException..." */
    {554, "5.2.252", "SendAsDenied", "sender-not-verified", "Microsoft 365 / Outlook.com",
        "Microsoft refused to send as this sender{reply}: the authenticated account is not "
        "allowed to send as the From address.",
        "Send with the authenticated account's own address as From (and MAIL FROM), or have an "
        "administrator grant Send As on the other address.",
        NULL},
    /* --- existing ids, the provider's own fix ------------------------------------- */
    /* sandstorm-io/sandstorm#2734: "535 Authentication Credentials Invalid"
     * (no enhanced code: smtpgate's own 535 5.7.8 must not match) */
    {535, "", "Authentication Credentials Invalid", "auth-credentials-invalid", "Amazon SES",
        "Amazon SES rejected the SMTP credentials{reply}: SES SMTP credentials are neither the "
        "AWS console login nor an IAM access key pair, and they belong to one region.",
        "Create SMTP credentials in the SES console of the region of the endpoint you use "
        "(SMTP settings, Create SMTP credentials), or derive the SMTP password from the IAM "
        "secret access key with AWS's documented algorithm (the user name is the access key "
        "ID); a rotated access key needs a new SMTP password.",
        NULL},
    /* simonrob/email-oauth2-proxy#315: "530 5.7.57 Client not authenticated to
     * send mail" (older: "5.7.57 SMTP; Client was not authenticated to send
     * anonymous mail during MAIL FROM", renevanosnabrugge/SendEmail-BuildTask#49) */
    {530, "5.7.57", NULL, "auth-required", "Microsoft 365",
        "Microsoft 365 refused the mail because the session is not authenticated{reply}: the "
        "client sent MAIL without AUTH, or its AUTH failed and it went on anyway.",
        "Authenticate before MAIL on smtp.office365.com port 587 with STARTTLS, using the full "
        "mailbox address; if AUTH itself fails, authenticated SMTP must be on for the mailbox "
        "(Manage email apps, Authenticated SMTP) and the tenant.",
        NULL},
    /* nodemailer/nodemailer#1071: "535 5.7.3 Authentication unsuccessful
     * [SN4PR0601CA0002.namprd06.prod.outlook.com]" */
    {535, "5.7.3", "Authentication unsuccessful", "auth-credentials-invalid", "Microsoft 365",
        "Microsoft 365 rejected this sign-in{reply}: a wrong password or user name, or the "
        "account may not sign in with a password over SMTP (authenticated SMTP off for the "
        "mailbox, multi-factor authentication, or a policy blocking legacy sign-in).",
        "Use the full mailbox address (the UPN) as user name and check the password; have an "
        "administrator turn on Authenticated SMTP for the mailbox (Manage email apps) and check "
        "that security defaults or Conditional Access do not block it; accounts with MFA need "
        "OAuth (XOAUTH2) or, where allowed, an app password.",
        NULL},
    /* freescout-help-desk/freescout#4930: "535 5.7.139 Authentication
     * unsuccessful, the user credentials were incorrect." */
    {535, "5.7.139", "the user credentials were incorrect", "auth-credentials-invalid",
        "Microsoft 365", "Microsoft 365 rejected the user name or password{reply}.",
        "Use the full mailbox address (the UPN) as user name and check the password; an account "
        "with MFA needs OAuth (XOAUTH2) or, where allowed, an app password.",
        NULL},
    /* accimeesterlin/nodemailer-examples#3: "535-5.7.8 Username and Password
     * not accepted. Learn more at" / "535 5.7.8
     * https://support.google.com/mail/?p=BadCredentials i5sm8565805wrv.34 - gsmtp" */
    {535, "5.7.8", "p=BadCredentials", "auth-credentials-invalid", "Gmail",
        "Gmail rejected the user name or password{reply}: a wrong password, or the account "
        "password itself, which Google no longer takes from mail clients (\"less secure apps\" "
        "access ended in 2022).",
        "Turn on 2-Step Verification for the Google account and create an app password "
        "(https://myaccount.google.com/apppasswords), then use it with the full address as user "
        "name; or sign in with OAuth (XOAUTH2).",
        "https://support.google.com/mail/?p=BadCredentials"},
};

/* "5.7.1" matches "5.7.1" but not "5.7.139"; "" matches only no code. */
static bool
kb_provider_enh_matches(const char *want, const char *enh)
{
	size_t n;

	if (want == NULL)
		return true;
	if (enh == NULL || want[0] == '\0')
		return (enh == NULL ? "" : enh)[0] == '\0' && want[0] == '\0';
	n = strlen(want);
	return strncmp(enh, want, n) == 0 && (enh[n] == '\0' || enh[n] == '.');
}

static bool
kb_provider_has(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; hay != NULL && *hay != '\0'; hay++) {
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	}
	return false;
}

const char *
kb_provider_find(int code, const char *enh, const char *text, struct finding_reply *r)
{
	for (size_t i = 0; i < sizeof(kb_provider_rows) / sizeof(kb_provider_rows[0]); i++) {
		const struct kb_provider_row *k = &kb_provider_rows[i];

		if (k->code != code || !kb_provider_enh_matches(k->enh, enh))
			continue;
		if (k->words != NULL && !kb_provider_has(text, k->words))
			continue;
		if (r != NULL) {
			r->provider = k->provider;
			r->cause = k->cause;
			r->fix = k->fix;
			r->help = k->help;
		}
		return k->id;
	}
	return NULL;
}

"""The big providers' refusals, replayed word for word by a scripted server
over STARTTLS, for `smtpgate probe` and for delivery through `[relay]`:
both must name the finding id, keep the whole reply (every line, in order)
as evidence, quote the reply's own codes in the cause, and give the
provider's fix (src/explain/kb_provider.c, where each reply's source is
cited). Replies nobody knows keep the generic findings.
"""
import pytest
import zoo
from zoo import ids, probe

from test_delivery import deliveries, message, relay_conf, secret_file, submit

# name, command that gets the reply, the reply's lines (exactly as the
# provider sends them), finding id, provider, words of the provider's fix,
# help page, the relay's result
CASES = [
    ("gmail-app-password", "AUTH", [
        "534-5.7.9 Application-specific password required. Learn more at",
        "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor "
        "o13sm2119833lfg.90 - gsmtp"],
     "auth-app-password-required", "Gmail", "myaccount.google.com/apppasswords",
     "https://support.google.com/mail/?p=InvalidSecondFactor", "held"),
    ("gmail-app-password-2024", "AUTH", [
        "534-5.7.9 Application-specific password required. For more information, go to",
        "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor "
        "ffacd0b85a97d-368119970e7sm1809147f8f.21 - gsmtp"],
     "auth-app-password-required", "Gmail", "myaccount.google.com/apppasswords",
     "https://support.google.com/mail/?p=InvalidSecondFactor", "held"),
    ("gmail-web-login", "AUTH", [
        "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbs7",
        "534-5.7.14 UF7mumzUwFIZrMDWiiimSdrlEvZIp8kRC3QRkzqwfOM94wkvVFys_Yjllj6KGuBubi6SwF",
        "534-5.7.14 BDIHCpQgETRmmgkyJXfYN4Ne3uG3tnsVJk7oGR4Z5fvgeIkuOJOKkvRA8cLWFN67ya4r28",
        "534-5.7.14 u-eBDds9bTTh1poYtxXWk1x80iaSn_2VlJHWJnB0Yql6r_-A2lDE8nt00lWP7eoUpkzVih",
        "534-5.7.14 x1DeI0bGyNqNHRRUuucw0k95Ph-CY> Please log in via your web browser and",
        "534-5.7.14 then try again.",
        "534-5.7.14  Learn more at",
        "534 5.7.14  https://support.google.com/mail/answer/78754 100sm8943270iot.39 - gsmtp"],
     "auth-web-login-required", "Gmail", "myaccount.google.com/notifications",
     "https://support.google.com/mail/answer/78754", "held"),
    ("m365-tenant", "AUTH", [
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
        "[MN2PR05CA0004.namprd05.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]"],
     "auth-smtp-disabled", "Microsoft 365", "Set-TransportConfig",
     "https://aka.ms/smtp_auth_disabled", "held"),
    ("m365-mailbox", "AUTH", [
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Mailbox"],
     "auth-smtp-disabled", "Microsoft 365", "Set-CASMailbox",
     "https://aka.ms/smtp_auth_disabled", "held"),
    ("outlook-basic-auth", "AUTH", [
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
        "[PN0PR01CA0024.INDPRD01.PROD.OUTLOOK.COM 2025-01-26T18:54:30.055Z 08DD3DD7D75D7743]"],
     "auth-smtp-disabled", "Microsoft 365 / Outlook.com", "SMTP.Send", None, "held"),
    ("yahoo-auth005", "AUTH", ["535 5.7.0 (#AUTH005) Too many bad auth attempts."],
     "auth-too-many-attempts", "Yahoo", "Generate app password", None, "held"),
    ("gmail-too-many-logins", "AUTH", [
        "454-4.7.0 Too many login attempts, please try again later. Learn more at",
        "454 4.7.0  https://support.google.com/mail/answer/7126229 "
        "h6-20020a0561220b6600b0049d21a8f4b6sm1103848vkf.11 - gsmtp"],
     "auth-too-many-attempts", "Gmail", "minutes to an hour",
     "https://support.google.com/mail/answer/7126229", "deferred"),
    ("ses-credentials", "AUTH", ["535 Authentication Credentials Invalid"],
     "auth-credentials-invalid", "Amazon SES", "access key", None, "held"),
    ("m365-5.7.3", "AUTH", [
        "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0002.namprd06.prod.outlook.com]"],
     "auth-credentials-invalid", "Microsoft 365", "Authenticated SMTP for the mailbox", None,
     "held"),
    ("gmail-bad-credentials", "AUTH", [
        "535-5.7.8 Username and Password not accepted. Learn more at",
        "535 5.7.8  https://support.google.com/mail/?p=BadCredentials i5sm8565805wrv.34 - gsmtp"],
     "auth-credentials-invalid", "Gmail", "2-Step Verification",
     "https://support.google.com/mail/?p=BadCredentials", "held"),
    ("m365-not-authenticated", "MAIL", ["530 5.7.57 Client not authenticated to send mail"],
     "auth-required", "Microsoft 365", "smtp.office365.com", None, "held"),
    ("ses-not-verified", "DATA", [
        "554 Message rejected: Email address is not verified. The following identities failed "
        "the check in region US-WEST-2: email"],
     "sender-not-verified", "Amazon SES", "Identities are per region", None, "bounced"),
    ("m365-send-as-denied", "DATA", [
        "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
        "Failed to process message due to a permanent exception with message Cannot submit "
        "message."],
     "sender-not-verified", "Microsoft 365", "Delegation", None, "bounced"),
    # nobody's known words: the generic finding, quoting this reply's codes
    ("unknown-5.7.139", "AUTH", [
        "535 5.7.139 Authentication unsuccessful, for a reason not seen before"],
     "auth-credentials-invalid", None, None, None, "held"),
    ("smtpgate-535", "AUTH", ["535 5.7.8 Authentication credentials invalid"],
     "auth-credentials-invalid", None, None, None, "held"),
    ("plain-534", "AUTH", ["534 5.7.9 Authentication mechanism is too weak"],
     "auth-mechanism-too-weak", None, None, None, "held"),
]


def codes_of(lines):
    """The cause quotes the final line's code and enhanced code."""
    last = lines[-1]
    code, rest = last[:3], last[4:]
    enh = rest.split(" ", 1)[0]
    return f"({code} {enh})" if enh[:1] == code[:1] and enh.count(".") == 2 else f"({code})"


def provider_server(pki, stage, lines):
    """A STARTTLS server answering `stage` with lines, everything else as a
    well-behaved one (AUTH: 235)."""
    tls = zoo.tls_server_context(pki.dir / "mail-chain.pem", pki.dir / "mail.key")
    reply = "\r\n".join(lines)

    def auth(c, line):
        c.send((reply if stage == "AUTH" else "235 2.7.0 Authentication successful") + "\r\n")

    return zoo.ScriptServer(lambda c, srv: zoo.smtp_dialogue(
        c, srv, ehlo=("PIPELINING", "AUTH PLAIN LOGIN"), tls_ctx=tls, auth=auth,
        on_mail=reply if stage == "MAIL" else None, on_data=reply if stage == "DATA" else None))


def check_explained(where, fid, cause, fix, provider, help_, lines, want_provider, fix_words,
                    want_help):
    assert cause.count(codes_of(lines)) == 1, (where, cause)
    assert "{reply}" not in cause
    if want_provider is None:
        assert provider is None and help_ is None, (where, provider, help_)
        return
    assert provider == want_provider, (where, provider)
    assert fix_words in fix, (where, fix)
    assert help_ == want_help, (where, help_)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_probe_explains_provider_reply(pki, case):
    name, stage, lines, fid, want_provider, fix_words, want_help, _ = case
    peer = provider_server(pki, stage, lines)
    try:
        args = [f"127.0.0.1:{peer.port}", "--starttls", "--cafile", pki.root]
        if stage != "MAIL" or want_provider != "Microsoft 365":
            args += ["--user", "relayuser@example.net", "--auth", "PLAIN"]
        if stage != "AUTH":
            args += ["--from", "alice@example.net", "--to", "bob@example.org"]
        rc, doc, err = probe(*args, env={"SMTPPASSWORD": "pw"})
    finally:
        peer.stop()
    assert rc == 1, (doc, err)
    assert not peer.errors, peer.errors
    assert fid in ids(doc), doc["findings"]
    f = [f for f in doc["findings"] if f["id"] == fid][0]
    # the whole reply, every line in order, is the evidence
    assert f["evidence"] == f"{stage} " + "\n".join(lines), f["evidence"]
    check_explained("probe", fid, f["cause"], f["fix"], f.get("provider"), f.get("help"),
                    lines, want_provider, fix_words, want_help)
    if fid == "auth-too-many-attempts":
        # not retried: retries keep the lock on
        assert len([t for t in peer.transcripts if any(ln.startswith("AUTH") for ln in t)]) == 1


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_relay_explains_provider_reply(make_server, pki, tmp_path, case):
    name, stage, lines, fid, want_provider, fix_words, want_help, result = case
    peer = provider_server(pki, stage, lines)
    try:
        extra = ""
        if stage != "MAIL" or want_provider != "Microsoft 365":
            cred = secret_file(tmp_path, "relayuser@example.net relay-secret\n")
            extra = f"auth = PLAIN\ncredentials = {cred}"
        s = make_server(extra=relay_conf(peer.port, pki, extra)).start()
        submit(s, ["bob@example.net"], message(name))
        qid = s.wait_event("accepted")["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
        assert ev["result"] == result, ev
        assert ev["finding"] == fid, ev
        assert ev["code"] == int(lines[-1][:3])
        # the log keeps the whole reply; the queue's reason (and the DSN)
        # its final line
        assert ev["reply"] == "\n".join(lines), ev
        assert ev["reason"].startswith(f"{stage}: {lines[-1][:100]}"), ev
        check_explained("relay", fid, ev["cause"], ev["fix"], ev.get("provider"),
                        ev.get("help"), lines, want_provider, fix_words, want_help)
        assert "relay-secret" not in s.log.read_text()
        assert len(deliveries(s, queue_id=qid)) >= 1
    finally:
        peer.stop()

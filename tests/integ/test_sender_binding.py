"""Sender binding: an authenticated user may use as the
envelope MAIL FROM and as the header From: only the login address and the
senders= patterns of the passwd file; otherwise 553 5.7.1 naming what is
allowed, and nothing is queued. Off per listener with sender_binding = off;
unauthenticated mail (relay = local) is not bound. Real clients: smtplib,
swaks, and the raw client for exact bytes (several From: fields, BDAT)."""
import shutil
import smtplib
import subprocess

import pytest

from conftest import PASSWORD, SMTPGATE, USER, wait_for
from smtpclient import SMTPClient, client_context

RCPT = "bob@example.test"
NOT_OWNED = ("553 5.7.1 Sender address rejected: not owned by user alice@example.test "
             "(allowed: alice@example.test)")


def not_owned_header(addr, allowed="alice@example.test"):
    return ("553 5.7.1 Sender address rejected: not owned by user alice@example.test "
            f"(header From: {addr}; allowed: {allowed})")


def senders(server, *patterns):
    r = subprocess.run([SMTPGATE, "user", "senders", USER, *patterns, "-f", str(server.users)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def message(header_from, marker="x", extra=""):
    return (f"From: {header_from}\r\nTo: <{RCPT}>\r\nSubject: binding {marker}\r\n{extra}"
            f"\r\nbody {marker}\r\n")


def ready(server, port=None, implicit=False):
    """An authenticated raw session on the submission (or smtps) listener."""
    if implicit:
        c = SMTPClient(port or server.smtps, implicit_tls=True, ctx=client_context())
        c.ehlo()
        c.login(USER, PASSWORD)
        return c
    c = SMTPClient(port or server.submission)
    c.submit_ready(USER, PASSWORD, client_context())
    return c


def data(c, sender, body):
    """MAIL, RCPT, DATA with body: the final reply (or the MAIL reply when
    MAIL is refused)."""
    r = c.cmd(f"MAIL FROM:<{sender}>")
    if r.code != 250:
        return r
    assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(body.encode() + b".\r\n")
    return c.reply()


def queued_ids(server):
    return [m["id"] for m in server.queued()]


def test_own_address_smtplib(server):
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=client_context())
        s.login(USER, PASSWORD)
        s.sendmail(USER, [RCPT], message(f"Alice <{USER}>"))
        # the local part and domain compare case-insensitively
        s.sendmail("Alice@Example.TEST", [RCPT], message("ALICE@example.test"))
    assert len(queued_ids(server)) == 2


def test_foreign_mail_from_exact_reply(server):
    with ready(server) as c:
        assert c.cmd("MAIL FROM:<bob@example.test>").last == NOT_OWNED
        # the transaction did not start; an owned sender still works
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 503
        assert data(c, USER, message(USER)).code == 250
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=client_context())
        s.login(USER, PASSWORD)
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("mallory@evil.test", [RCPT], message("mallory@evil.test"))
        assert e.value.smtp_code == 553
        assert e.value.smtp_error.decode() == NOT_OWNED[4:]
    r = server.wait_event("reject", lambda r: r.get("code") == 553)
    assert r["enhanced"] == "5.7.1"
    assert len(queued_ids(server)) == 1


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_foreign_header_from_swaks(server):
    """Own envelope, foreign header From: refused at the end of DATA."""
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(server.submission), "--tls",
         "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
         "--from", USER, "--to", RCPT, "--helo", "client.example.test",
         "--header", "From: Mallory <mallory@evil.test>", "--body", "spoof",
         "--timeout", "30"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    assert f"<~* {not_owned_header('mallory@evil.test')}" in r.stdout, r.stdout
    assert queued_ids(server) == []
    # and with the own address in the header, the same command queues it
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(server.submission), "--tls",
         "--auth", "LOGIN", "--auth-user", USER, "--auth-password", PASSWORD,
         "--from", USER, "--to", RCPT, "--helo", "client.example.test",
         "--header", f"From: Alice <{USER}>", "--body", "fine", "--timeout", "30"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  250 2.0.0 OK: queued as" in r.stdout
    assert len(queued_ids(server)) == 1


@pytest.mark.parametrize("header_from,bad", [
    # a display name that looks like the own address
    (f'"{USER}" <mallory@evil.test>', "mallory@evil.test"),
    (f"{USER} (Alice) , mallory@evil.test", "mallory@evil.test"),
    (f"Alice <{USER}>,\r\n Mallory <mallory@evil.test>", "mallory@evil.test"),
    ("=?UTF-8?B?YWxpY2VAZXhhbXBsZS50ZXN0?= <mallory@evil.test>", "mallory@evil.test"),
    (f'"{USER}"@evil.test', f'"{USER}"@evil.test'),
])
def test_header_from_tricks(server, header_from, bad):
    with ready(server) as c:
        assert data(c, USER, message(header_from)).last == not_owned_header(bad)
    assert queued_ids(server) == []


def test_several_from_fields(server):
    """Several From: fields (or a list without Sender:) pass only when every
    address is owned."""
    with ready(server) as c:
        body = message(USER, extra="From: mallory@evil.test\r\n")
        assert data(c, USER, body).last == not_owned_header("mallory@evil.test")
        body = message(USER, extra=f"From: Alice again <{USER}>\r\n")
        assert data(c, USER, body).code == 250
        assert data(c, USER, message(f"{USER}, alice@EXAMPLE.test")).code == 250
    assert len(queued_ids(server)) == 2


def test_unparseable_from_and_missing_from(server):
    with ready(server) as c:
        r = data(c, USER, message("Alice"))
        assert r.last == ("553 5.7.1 Sender address rejected: cannot parse the From: "
                          "header"), r
        # no From: at all is accepted (nothing to spoof; the envelope is owned)
        assert data(c, USER, f"To: <{RCPT}>\r\nSubject: no from\r\n\r\nx\r\n").code == 250
        # a From: line in the body is not a header
        body = f"Subject: s\r\n\r\nFrom: mallory@evil.test\r\n"
        assert data(c, USER, body).code == 250
    assert len(queued_ids(server)) == 2


def test_null_sender_allowed_header_checked(server):
    with ready(server) as c:
        assert data(c, "", message(USER)).code == 250
        assert data(c, "", message("mallory@evil.test")).last == \
            not_owned_header("mallory@evil.test")
    assert len(queued_ids(server)) == 1


def test_bdat_header_checked(server):
    with ready(server) as c:
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
        msg = message("mallory@evil.test").encode()
        a, b = msg[:9], msg[9:]  # the From: field split across chunks
        c.send(b"BDAT %d\r\n" % len(a) + a)
        assert c.reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        assert c.reply().last == not_owned_header("mallory@evil.test")
    assert queued_ids(server) == []


def test_aliases_and_domains(server):
    senders(server, "@example.org", "info@example.net")
    allowed = "alice@example.test, @example.org, info@example.net"
    with ready(server) as c:
        assert data(c, "anyone@example.org", message("Anyone <anyone@EXAMPLE.org>")).code == 250
        assert data(c, "info@example.net", message("info@example.net")).code == 250
        # a subdomain is another domain; the alias's domain does not cover others
        r = c.cmd("MAIL FROM:<x@sub.example.org>")
        assert r.last == ("553 5.7.1 Sender address rejected: not owned by user "
                          f"alice@example.test (allowed: {allowed})"), r
        assert data(c, USER, message("sales@example.net")).last == \
            not_owned_header("sales@example.net", allowed)
    assert len(queued_ids(server)) == 2


def test_senders_take_effect_without_restart(server):
    with ready(server) as c:
        assert c.cmd("MAIL FROM:<team@example.org>").last == NOT_OWNED
    senders(server, "team@example.org")
    with ready(server) as c:
        assert data(c, "team@example.org", message("Team <team@example.org>")).code == 250
    senders(server)  # cleared
    with ready(server) as c:
        assert c.cmd("MAIL FROM:<team@example.org>").last == NOT_OWNED
    # bad patterns are refused by the command
    r = subprocess.run([SMTPGATE, "user", "senders", USER, "example.org", "-f",
                        str(server.users)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "example.org" in r.stderr
    assert server.proc.poll() is None


def test_binding_off_per_listener(make_server):
    s = make_server(submission_extra="sender_binding = off\n").start()
    with ready(s) as c:  # submission: off
        assert data(c, "mallory@evil.test", message("mallory@evil.test")).code == 250
    with ready(s, implicit=True) as c:  # smtps: the default, on
        assert c.cmd("MAIL FROM:<mallory@evil.test>").last == NOT_OWNED
        assert data(c, USER, message("mallory@evil.test")).last == \
            not_owned_header("mallory@evil.test")
    assert len(wait_for(lambda: s.queued(), what="queued")) == 1


def test_unauthenticated_local_mail_not_bound(server):
    with SMTPClient(server.mx) as c:
        c.ehlo()
        assert data(c, "someone@remote.test", message("Someone <someone@remote.test>")).code == 250
    assert len(queued_ids(server)) == 1

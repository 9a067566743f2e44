"""Every rejection path of the SMTP session, one test each, over raw sockets
(tests/integ/smtpclient.py), asserting the exact reply line of DESIGN 5.5 /
src/smtp/smtp_reply.c."""
import pathlib

import pytest

from conftest import (PASSWORD, USER, free_port, make_message, msg_id, msg_rcpts, msg_sender,
                      spool_body, wait_for, wait_port)
from smtpclient import SMTPClient, b64, client_context, plain_ir

STARTTLS_FIRST = "530 5.7.0 Must issue a STARTTLS command first"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_UNKNOWN = "504 5.5.4 Unrecognized authentication type"
AUTH_WEAK = "534 5.7.9 Authentication mechanism is too weak"
AUTH_NOT_ENABLED = "503 5.5.1 Authentication not enabled"
AUTH_NEEDS_TLS = "538 5.7.11 Encryption required for requested authentication mechanism"
AUTH_ABORTED = "501 5.7.0 Authentication aborted"
AUTH_BAD_B64 = "501 5.5.2 Cannot decode response"
AUTH_LINE_TOO_LONG = "500 5.5.6 Authentication exchange line is too long"
ALREADY_AUTH = "503 5.5.1 Already authenticated"
RELAY_DENIED = "554 5.7.1 Relay access denied"
SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
DATA_GO = "354 End data with <CR><LF>.<CR><LF>"
BARE_LF = "550 5.5.2 Bare LF or CR in message is not allowed"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
LINE_TOO_LONG = "500 5.5.6 Line too long"
SYNTAX = "500 5.5.2 Syntax error, command unrecognized"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
NEED_HELO = "503 5.5.1 Send EHLO or HELO first"
NEED_MAIL = "503 5.5.1 Need MAIL command"
NEED_RCPT = "503 5.5.1 Need RCPT command"
NESTED_MAIL = "503 5.5.1 Nested MAIL command"
BDAT_MIX = "503 5.5.1 DATA and BDAT cannot be mixed in one transaction"
TIMEOUT = "421 4.4.2 Timeout, closing connection"
VRFY = "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
HELP = "214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321"
NOT_IMPLEMENTED = "502 5.5.1 Command not implemented"
SMTPUTF8_REQUIRED = "553 5.6.7 Non-ASCII address requires SMTPUTF8"
NOOP_OK = "250 2.0.0 OK"
BYE = "221 2.0.0 Bye"


# --- helpers -----------------------------------------------------------------

def plain(server):
    """A client on the submission port, after EHLO (no TLS yet)."""
    c = SMTPClient(server.submission)
    assert c.greeting.last == "220 mail.example.test ESMTP ready", c.greeting
    c.ehlo()
    return c


def tls(server):
    """A client on the submission port after EHLO, STARTTLS, EHLO."""
    c = plain(server)
    c.starttls()
    c.ehlo()
    return c


def authed(server):
    c = tls(server)
    c.login(USER, PASSWORD)
    return c


def mx(server):
    c = SMTPClient(server.mx)
    c.ehlo()
    return c


def queued_reply(r):
    assert r.code == 250, r
    assert r.last.startswith("250 2.0.0 OK: queued as "), r
    return r.last.split()[-1]


def send_data(c, body):
    """DATA with body (bytes or str, sent as is, terminator included by caller)."""
    r = c.cmd("DATA")
    assert r.last == DATA_GO, r
    c.send(body)
    return c.reply()


def envelope(c, sender="sender@example.test", rcpt="bob@example.test"):
    assert c.cmd(f"MAIL FROM:<{sender}>").last == SENDER_OK
    assert c.cmd(f"RCPT TO:<{rcpt}>").last == RCPT_OK


def ids(server):
    return {msg_id(m) for m in server.queued()}


def rejects(server, code):
    return [r for r in server.events("reject") if r.get("code") == code]


def assert_usable(c):
    """The session still answers commands in step."""
    assert c.cmd("NOOP").last == NOOP_OK
    c.expect_nothing(0.2)


# --- STARTTLS and AUTH ordering ---------------------------------------------

def test_auth_before_starttls(server):
    with plain(server) as c:
        assert c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}").last == STARTTLS_FIRST
        assert c.cmd("AUTH LOGIN").last == STARTTLS_FIRST
        assert_usable(c)
    r = server.wait_event("reject", lambda r: r.get("code") == 530)
    assert r["enhanced"] == "5.7.0"
    assert r["reason"] == "Must issue a STARTTLS command first"


def test_mail_before_starttls(server):
    with plain(server) as c:
        assert c.cmd(f"MAIL FROM:<{USER}>").last == STARTTLS_FIRST
        assert c.cmd("RCPT TO:<bob@example.test>").last == NEED_MAIL


def test_auth_advertised_only_after_tls(server):
    with plain(server) as c:
        before = c.ehlo()
        assert "STARTTLS" in before
        assert not any(e.startswith("AUTH") for e in before), before
        c.starttls()
        after = c.ehlo()
        assert "STARTTLS" not in after, after
        auth = [e for e in after if e.startswith("AUTH ")]
        assert len(auth) == 1, after
        assert set(auth[0].split()[1:]) == {"PLAIN", "LOGIN"}, auth
        for ext in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"):
            assert ext in after, (ext, after)
        assert any(e.startswith("SIZE ") for e in after), after


def test_smtps_advertises_auth_and_not_starttls(server):
    with SMTPClient(server.smtps, implicit_tls=True) as c:
        assert c.greeting.last == "220 mail.example.test ESMTP ready"
        exts = c.ehlo()
        assert "STARTTLS" not in exts
        assert any(e.startswith("AUTH ") for e in exts), exts
        assert c.cmd("STARTTLS").last == "503 5.5.1 TLS already active"


def test_starttls_twice(server):
    with tls(server) as c:
        assert c.cmd("STARTTLS").last == "503 5.5.1 TLS already active"


def test_starttls_on_plain_listener(server):
    with mx(server) as c:
        assert "STARTTLS" not in c.ehlo()
        assert c.cmd("STARTTLS").last == NOT_IMPLEMENTED


def test_mail_without_auth_after_tls(server):
    with tls(server) as c:
        assert c.cmd(f"MAIL FROM:<{USER}>").last == AUTH_REQUIRED
    with SMTPClient(server.smtps, implicit_tls=True) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{USER}>").last == AUTH_REQUIRED


def test_wrong_password(server):
    with tls(server) as c:
        assert c.auth_plain(USER, PASSWORD + "x").last == AUTH_INVALID
        # AUTH LOGIN gets the same answer
        assert c.cmd("AUTH LOGIN").last == "334 " + b64("Username:")
        assert c.cmd(b64(USER)).last == "334 " + b64("Password:")
        assert c.cmd(b64("wrong")).last == AUTH_INVALID
        # and the session may try again
        assert c.auth_plain(USER, PASSWORD).last == AUTH_OK
    r = server.wait_event("auth", lambda r: r.get("result") == "fail")
    assert r["code"] == 535 and r["user"] == USER


def test_unknown_user_same_reply(server):
    with tls(server) as c:
        assert c.auth_plain("nobody@example.test", PASSWORD).last == AUTH_INVALID
        assert c.auth_plain("nobody", "x").last == AUTH_INVALID


def test_auth_unknown_mechanism(server):
    with tls(server) as c:
        assert c.cmd("AUTH FOO").last == AUTH_UNKNOWN
        assert c.cmd("AUTH SCRAM-SHA-1").last == AUTH_UNKNOWN  # not enabled here
        assert_usable(c)


def test_auth_cram_md5_too_weak(server):
    with tls(server) as c:
        assert c.cmd("AUTH CRAM-MD5").last == AUTH_WEAK
        assert c.cmd("AUTH cram-md5").last == AUTH_WEAK


def test_auth_on_mx_not_enabled(server):
    with mx(server) as c:
        assert c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}").last == AUTH_NOT_ENABLED
        exts = c.ehlo()
        assert not any(e.startswith("AUTH") for e in exts), exts


def test_auth_plain_needs_encryption(make_server):
    port = free_port()
    s = make_server(extra=f"[listen plainauth]\naddress = 127.0.0.1:{port}\n"
                          "tls = none\nauth = optional\nrelay = local\n").start()
    wait_port(port, proc=s.proc)
    with SMTPClient(port) as c:
        exts = c.ehlo()
        assert not any(e.startswith("AUTH") for e in exts), exts
        assert c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}").last == AUTH_NEEDS_TLS
        assert c.cmd("AUTH LOGIN").last == AUTH_NEEDS_TLS
        # auth = optional: unauthenticated local mail still works
        envelope(c)
        assert c.cmd("RCPT TO:<x@foreign.test>").last == RELAY_DENIED


def test_auth_cancel(server):
    with tls(server) as c:
        assert c.cmd("AUTH PLAIN").last == "334 "
        assert c.cmd("*").last == AUTH_ABORTED
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(b64(USER)).code == 334
        assert c.cmd("*").last == AUTH_ABORTED
        assert c.auth_plain(USER, PASSWORD).last == AUTH_OK


def test_auth_bad_base64(server):
    with tls(server) as c:
        assert c.cmd("AUTH PLAIN").last == "334 "
        assert c.cmd("!!!not base64!!!").last == AUTH_BAD_B64
        assert c.cmd("AUTH PLAIN %%%%").last == AUTH_BAD_B64
        assert c.auth_plain(USER, PASSWORD).last == AUTH_OK


def test_auth_line_too_long(server):
    with tls(server) as c:
        # as an initial response: over 12288 octets of response
        assert c.cmd("AUTH PLAIN " + "A" * 12292).last == AUTH_LINE_TOO_LONG
        # as a response to 334
        assert c.cmd("AUTH PLAIN").last == "334 "
        assert c.cmd("A" * 12292).last == AUTH_LINE_TOO_LONG
        # far over any line limit, in the AUTH state
        assert c.cmd("AUTH PLAIN").last == "334 "
        r = c.cmd("A" * 40000)
        assert r.code == 500 and r.last.startswith("500 5.5.6 "), r
        assert_usable(c)
        assert c.auth_plain(USER, PASSWORD).last == AUTH_OK


def test_auth_twice(server):
    with authed(server) as c:
        assert c.auth_plain(USER, PASSWORD).last == "503 5.5.1 Already authenticated"
        exts = c.ehlo()
        assert not any(e.startswith("AUTH") for e in exts), exts


def test_auth_during_transaction(server):
    with authed(server) as c:
        assert c.cmd(f"MAIL FROM:<{USER}>").last == SENDER_OK
        assert c.auth_plain(USER, PASSWORD).last == ALREADY_AUTH


def test_auth_plain_empty_initial_response(server):
    with tls(server) as c:
        # RFC 4954 4: "=" is an empty initial response, which PLAIN refuses
        assert c.cmd("AUTH PLAIN =").last == AUTH_INVALID
        # no initial response: an empty challenge, then the response
        assert c.cmd("AUTH PLAIN").last == "334 "
        assert c.cmd(plain_ir(USER, PASSWORD)).last == AUTH_OK


def test_auth_plain_authzid(server):
    with tls(server) as c:
        # an authzid of another user is refused
        assert c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD, 'bob@example.test')}").last \
            == AUTH_INVALID
        # equal to the user: accepted
        assert c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD, USER)}").last == AUTH_OK


# --- relay --------------------------------------------------------------------

def test_relay_denied_on_mx(server):
    with mx(server) as c:
        assert c.cmd("MAIL FROM:<someone@foreign.test>").last == SENDER_OK
        assert c.cmd("RCPT TO:<victim@elsewhere.test>").last == RELAY_DENIED
        assert c.cmd("RCPT TO:<bob@example.test>").last == RCPT_OK
        assert c.cmd("RCPT TO:<BOB@EXAMPLE.TEST>").last == RCPT_OK
        qid = queued_reply(send_data(c, make_message("someone@foreign.test",
                                                      "bob@example.test", "relay1") + ".\r\n"))
    msgs = {msg_id(m): m for m in server.queued()}
    assert set(msgs) == {qid}
    assert msg_sender(msgs[qid]) == "someone@foreign.test"
    assert [r.lower() for r in msg_rcpts(msgs[qid])] == ["bob@example.test"] * 2
    r = server.wait_event("reject", lambda r: r.get("code") == 554)
    assert r["enhanced"] == "5.7.1" and r["reason"] == "Relay access denied"


# --- DATA framing: bare LF / CR, smuggling ---------------------------------------

def test_bare_lf_in_data(server):
    with mx(server) as c:
        envelope(c)
        # "\n.\r\n" is not an end: the real end follows
        r = send_data(c, "Subject: x\n\nbody\n.\r\nmore\r\n.\r\n")
        assert r.last == BARE_LF, r
        assert_usable(c)
        # the transaction is gone
        assert c.cmd("RCPT TO:<bob@example.test>").last == NEED_MAIL
    assert server.queued() == []


def test_bare_lf_smuggling(server):
    with mx(server) as c:
        envelope(c)
        r = send_data(c, "Subject: x\r\n\r\nbody\r\n.\n"
                         "MAIL FROM:<evil@example.test>\r\n"
                         "RCPT TO:<victim@example.test>\r\n"
                         "DATA\r\n"
                         "Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
        assert r.last == BARE_LF, r
        # no replies to the smuggled commands
        c.expect_nothing(0.5)
        # the session stays usable and in step
        envelope(c)
        qid = queued_reply(send_data(c, make_message("sender@example.test",
                                                      "bob@example.test", "after") + ".\r\n"))
    msgs = server.queued()
    assert [msg_id(m) for m in msgs] == [qid]
    assert msg_sender(msgs[0]) == "sender@example.test"
    assert b"smuggled" not in spool_body(server, qid)


def test_cr_dot_cr_is_not_an_end(server):
    with mx(server) as c:
        envelope(c)
        r = send_data(c, "Subject: x\r\n\r\nbody\r.\rQUIT\r\n.\r\n")
        assert r.last == BARE_LF, r
        assert_usable(c)
    assert server.queued() == []


def test_bare_cr_in_data(server):
    with mx(server) as c:
        envelope(c)
        r = send_data(c, "Subject: x\r\n\r\nbody\rmore\r\n.\r\n")
        assert r.last == BARE_LF, r
        assert_usable(c)
    assert server.queued() == []


def test_bare_lf_in_bdat(server):
    with mx(server) as c:
        envelope(c)
        chunk = b"Subject: x\r\n\r\nbody\nmore\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        assert c.reply().last == BARE_LF
        assert_usable(c)
    assert server.queued() == []


def test_bare_cr_across_bdat_chunks(server):
    with mx(server) as c:
        envelope(c)
        a = b"Subject: x\r\n\r\nbody\r"
        c.send(b"BDAT %d\r\n" % len(a) + a)
        assert c.reply().last == f"250 2.0.0 {len(a)} octets received"
        b = b"x\r\n"  # the CR ending chunk one is not followed by LF
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        assert c.reply().last == BARE_LF
    assert server.queued() == []


# --- limits -----------------------------------------------------------------------

def test_size_limit_declared(make_server):
    s = make_server(limits="message_size = 10k").start()
    with SMTPClient(s.mx) as c:
        assert "SIZE 10240" in c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.test> SIZE=20000").last == TOO_BIG
        assert c.cmd("MAIL FROM:<a@example.test> SIZE=1000").last == SENDER_OK
    assert s.queued() == []


def test_size_limit_data(make_server):
    s = make_server(limits="message_size = 10k").start()
    with SMTPClient(s.mx) as c:
        c.ehlo()
        envelope(c)
        big = "Subject: big\r\n\r\n" + ("x" * 78 + "\r\n") * 200 + ".\r\n"
        assert send_data(c, big).last == TOO_BIG
        assert_usable(c)
        # a message under the limit still goes through
        envelope(c)
        queued_reply(send_data(c, "Subject: small\r\n\r\nsmall\r\n.\r\n"))
    assert len(s.queued()) == 1


def test_size_limit_bdat(make_server):
    s = make_server(limits="message_size = 10k").start()
    with SMTPClient(s.mx) as c:
        c.ehlo()
        envelope(c)
        chunk = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 200
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        assert c.reply().last == TOO_BIG
        assert_usable(c)
    assert s.queued() == []


def test_too_many_recipients(make_server):
    s = make_server(limits="recipients = 3").start()
    with SMTPClient(s.mx) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@example.test>").last == SENDER_OK
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@example.test>").last == RCPT_OK
        assert c.cmd("RCPT TO:<r3@example.test>").last == TOO_MANY_RCPTS
        qid = queued_reply(send_data(c, "Subject: r\r\n\r\nr\r\n.\r\n"))
    (m,) = s.queued()
    assert msg_id(m) == qid and len(msg_rcpts(m)) == 3


def test_command_line_too_long(server):
    with mx(server) as c:
        assert c.cmd("NOOP " + "x" * 3000).last == LINE_TOO_LONG
        # longer than the line splitter's buffer
        assert c.cmd("NOOP " + "x" * 30000).last == LINE_TOO_LONG
        assert c.cmd("MAIL FROM:<" + "a" * 3000 + "@example.test>").last == LINE_TOO_LONG
        assert_usable(c)


@pytest.mark.parametrize("size", [20_000, 80_000, 300_000])
def test_long_line_then_command_in_one_write_over_tls(server, size):
    """An over-long line is skipped a window at a time; over TLS the whole of
    it (and the command behind it) is read ahead at once, so the session must
    go on through its input without waiting for another read event."""
    with SMTPClient(server.smtps, implicit_tls=True) as c:
        c.send("X" * size + "\r\nNOOP\r\n")
        assert c.reply(timeout=10).last == LINE_TOO_LONG
        assert c.reply(timeout=10).last == "250 2.0.0 OK"


def test_unknown_command(server):
    with mx(server) as c:
        assert c.cmd("FROB").last == SYNTAX
        assert c.cmd("MAILFROM:<a@example.test>").last == SYNTAX
        assert_usable(c)
    r = server.wait_event("reject", lambda r: r.get("code") == 500)
    assert r["enhanced"] == "5.5.2" and r["reason"] == "Syntax error, command unrecognized"


def test_too_many_errors(make_server):
    s = make_server(limits="errors = 3").start()
    with SMTPClient(s.mx) as c:
        assert c.cmd("FROB1").last == SYNTAX
        assert c.cmd("FROB2").last == SYNTAX
        c.send("FROB3\r\n")
        assert c.reply().last == SYNTAX
        assert c.reply().last == TOO_MANY_ERRORS
        assert c.expect_closed() == b""
    # the server still serves others
    with SMTPClient(s.mx) as c:
        c.ehlo()


def test_too_many_errors_pipelined(make_server):
    s = make_server(limits="errors = 3").start()
    with SMTPClient(s.mx) as c:
        c.send("A\r\nB\r\nC\r\nD\r\nE\r\n")
        for _ in range(3):
            assert c.reply().last == SYNTAX
        assert c.reply().last == TOO_MANY_ERRORS
        assert c.expect_closed() == b""


# --- command sequence ----------------------------------------------------------

def test_data_before_rcpt(server):
    with mx(server) as c:
        assert c.cmd("DATA").last == NEED_MAIL
        assert c.cmd("MAIL FROM:<a@example.test>").last == SENDER_OK
        assert c.cmd("DATA").last == NEED_RCPT
        assert_usable(c)


def test_rcpt_before_mail(server):
    with mx(server) as c:
        assert c.cmd("RCPT TO:<bob@example.test>").last == NEED_MAIL


def test_mail_before_ehlo(server):
    with SMTPClient(server.mx) as c:
        assert c.cmd("MAIL FROM:<a@example.test>").last == NEED_HELO
        assert c.cmd("HELO client.example.test").code == 250
        assert c.cmd("MAIL FROM:<a@example.test>").last == SENDER_OK


def test_nested_mail(server):
    with mx(server) as c:
        assert c.cmd("MAIL FROM:<a@example.test>").last == SENDER_OK
        assert c.cmd("MAIL FROM:<b@example.test>").last == NESTED_MAIL
        assert c.cmd("RSET").last == "250 2.0.0 Reset state"
        assert c.cmd("MAIL FROM:<b@example.test>").last == SENDER_OK


def test_starttls_pipelining_injection(server):
    with SMTPClient(server.submission) as c:
        c.ehlo()
        # the NOOP rides in the same packet as STARTTLS, in plaintext
        c.send("STARTTLS\r\nNOOP\r\n")
        assert c.reply().last == "220 2.0.0 Ready to start TLS"
        assert c.buf == b"", c.buf  # nothing after the 220 in plaintext
        c._wrap(client_context(), "mail.example.test")
        # the first reply under TLS is to our own command, not to the NOOP
        r = c.cmd("EHLO client.example.test")
        assert r.code == 250 and len(r.lines) > 1, r
        exts = [t.upper() for t in r.texts[1:]]
        assert any(e.startswith("AUTH ") for e in exts), exts
        c.expect_nothing(0.5)
        assert c.cmd("NOOP").last == NOOP_OK
        c.expect_nothing(0.2)


def test_state_forgotten_after_starttls(server):
    with plain(server) as c:
        c.starttls()
        assert c.cmd(f"MAIL FROM:<{USER}>").last == NEED_HELO
        assert c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}").last == "503 5.5.1 Send EHLO first"
        c.ehlo()
        assert c.auth_plain(USER, PASSWORD).last == AUTH_OK


def test_garbage_instead_of_tls_handshake(server):
    with SMTPClient(server.smtps, greeting=False) as c:
        c.send(b"EHLO client.example.test\r\n" + bytes(range(256)) * 4)
        rest = c.expect_closed(timeout=10)
        assert not rest.startswith(b"220"), rest
    with SMTPClient(server.smtps, greeting=False) as c:
        c.send(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello record
        c.expect_closed(timeout=10)
    # others are still served
    with SMTPClient(server.smtps, implicit_tls=True) as c:
        c.ehlo()
        assert c.auth_plain(USER, PASSWORD).last == AUTH_OK
    server.wait_event("tls_error")


def test_command_timeout(make_server):
    s = make_server(limits="timeout_command = 2s").start()
    with SMTPClient(s.mx, timeout=15) as c:
        c.ehlo()
        assert c.reply(timeout=10).last == TIMEOUT
        assert c.expect_closed() == b""
    with SMTPClient(s.submission, timeout=15) as c:
        c.ehlo()
        c.starttls()
        assert c.reply(timeout=10).last == TIMEOUT
        c.expect_closed()


def test_vrfy_help_expn(server):
    with mx(server) as c:
        assert c.cmd("VRFY bob@example.test").last == VRFY
        assert c.cmd("HELP").last == HELP
        assert c.cmd("HELP MAIL").last == HELP
        assert c.cmd("EXPN staff").last == NOT_IMPLEMENTED


# --- BDAT, pipelining, null sender, SMTPUTF8 ----------------------------------

def test_bdat_chunks(server):
    with mx(server) as c:
        envelope(c)
        a = b"Subject: chunked\r\n\r\nfirst "
        b = b"second\r\n.dot stays\r\n"
        c.send(b"BDAT %d\r\n" % len(a) + a)
        assert c.reply().last == f"250 2.0.0 {len(a)} octets received"
        c.send(b"BDAT %d\r\n" % len(b) + b)
        assert c.reply().last == f"250 2.0.0 {len(a) + len(b)} octets received"
        qid = queued_reply(c.cmd("BDAT 0 LAST"))
    body = spool_body(server, qid)
    assert body.endswith(a + b), body
    assert body.startswith(b"Received: ")


def test_bdat_then_data(server):
    with mx(server) as c:
        envelope(c)
        a = b"Subject: mixed\r\n\r\nx\r\n"
        c.send(b"BDAT %d\r\n" % len(a) + a)
        assert c.reply().code == 250
        assert c.cmd("DATA").last == BDAT_MIX
        # the BDAT transaction can still be completed
        qid = queued_reply(c.cmd("BDAT 0 LAST"))
    assert ids(server) == {qid}


def test_bdat_without_transaction(server):
    with mx(server) as c:
        c.send(b"BDAT 5 LAST\r\nhello")
        assert c.reply().last == NEED_MAIL
        assert_usable(c)


def test_pipelined_transaction(server):
    with mx(server) as c:
        msg = make_message("p@example.test", "bob@example.test", "pipelined")
        c.send("MAIL FROM:<p@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
               "RCPT TO:<carol@example.test>\r\nDATA\r\n")
        assert c.reply().last == SENDER_OK
        assert c.reply().last == RCPT_OK
        assert c.reply().last == RCPT_OK
        assert c.reply().last == DATA_GO
        c.send(msg + ".\r\nNOOP\r\nQUIT\r\n")
        qid = queued_reply(c.reply())
        assert c.reply().last == NOOP_OK
        assert c.reply().last == BYE
        c.expect_closed()
    (m,) = server.queued()
    assert msg_id(m) == qid
    assert msg_rcpts(m) == ["bob@example.test", "carol@example.test"]


def test_null_sender(server):
    with mx(server) as c:
        assert c.cmd("MAIL FROM:<>").last == SENDER_OK
        assert c.cmd("RCPT TO:<bob@example.test>").last == RCPT_OK
        qid = queued_reply(send_data(c, "Subject: bounce\r\n\r\nx\r\n.\r\n"))
    (m,) = server.queued()
    assert msg_id(m) == qid and msg_sender(m) == ""


def test_smtputf8(server):
    with mx(server) as c:
        c.send("MAIL FROM:<jösé@example.test>\r\n".encode())
        assert c.reply().last == SMTPUTF8_REQUIRED
        assert c.cmd("MAIL FROM:<a@example.test>").last == SENDER_OK
        c.send("RCPT TO:<ünï@example.test>\r\n".encode())
        assert c.reply().last == SMTPUTF8_REQUIRED
        assert c.cmd("RSET").code == 250
        c.send("MAIL FROM:<jösé@example.test> SMTPUTF8\r\n".encode())
        assert c.reply().last == SENDER_OK
        c.send("RCPT TO:<ünï@example.test>\r\n".encode())
        assert c.reply().last == RCPT_OK
        qid = queued_reply(send_data(c, "Subject: utf8\r\n\r\nx\r\n.\r\n".encode()))
    (m,) = server.queued()
    assert msg_id(m) == qid
    assert msg_sender(m) == "jösé@example.test"
    assert msg_rcpts(m) == ["ünï@example.test"]
    assert b"with UTF8SMTP " in spool_body(server, qid)


# --- logs ---------------------------------------------------------------------

def test_auth_log_and_no_password(make_server):
    server = make_server().start()
    secret_wrong = "Wr0ng-s3cret-pa55word"
    with tls(server) as c:
        assert c.auth_plain(USER, secret_wrong).last == AUTH_INVALID
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(b64(USER)).code == 334
        assert c.cmd(b64(secret_wrong + "2")).last == AUTH_INVALID
        assert c.cmd("AUTH PLAIN").code == 334
        assert c.cmd(plain_ir(USER, PASSWORD)).last == AUTH_OK
    with plain(server) as c:
        c.cmd(f"AUTH PLAIN {plain_ir(USER, PASSWORD)}")  # refused before TLS
    ok = server.wait_event("auth", lambda r: r.get("result") == "ok")
    fails = wait_for(lambda: [r for r in server.events("auth") if r.get("result") == "fail"]
                     if len(server.events("auth")) >= 3 else None, what="3 auth events")
    assert len(fails) == 2, fails
    for r in [ok, *fails]:
        for k in ("ts", "level", "event", "session", "mechanism", "user", "result", "code",
                  "client"):
            assert k in r, (k, r)
        assert r["user"] == USER and r["client"] == "127.0.0.1"
    assert ok["code"] == 235 and ok["mechanism"] == "PLAIN"
    assert sorted((r["mechanism"], r["code"]) for r in fails) == [("LOGIN", 535), ("PLAIN", 535)]
    assert server.stop() == 0, server.stderr_text()
    texts = [server.log.read_text(errors="replace"), server.stderr_text()]
    for secret in (PASSWORD, secret_wrong, b64(PASSWORD), plain_ir(USER, PASSWORD),
                   plain_ir(USER, secret_wrong), b64(secret_wrong + "2")):
        for t in texts:
            assert secret not in t, secret


def test_reject_log_fields(server):
    with mx(server) as c:
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd("RCPT TO:<x@foreign.test>").last == RELAY_DENIED
        assert c.cmd("FROB").last == SYNTAX
    r1 = server.wait_event("reject", lambda r: r.get("code") == 554)
    r2 = server.wait_event("reject", lambda r: r.get("code") == 500)
    for r in (r1, r2):
        for k in ("ts", "level", "session", "code", "enhanced", "reason"):
            assert k in r, (k, r)
        assert isinstance(r["code"], int)
    assert (r1["enhanced"], r1["reason"]) == ("5.7.1", "Relay access denied")
    assert (r2["enhanced"], r2["reason"]) == ("5.5.2", "Syntax error, command unrecognized")
    # every line of the log is one JSON object with ts, level, event
    for rec in server.events():
        for k in ("ts", "level", "event"):
            assert k in rec, rec


# --- connection close -----------------------------------------------------------

@pytest.mark.parametrize("listener", ["mx", "submission"])
def test_quit_closes_plain_connection(server, listener):
    with SMTPClient(getattr(server, listener)) as c:
        c.ehlo()
        assert c.cmd("QUIT").last == BYE
        assert c.expect_closed(timeout=5) == b""
    server.wait_event("disconnect")


def test_quit_closes_tls_connection(server):
    with tls(server) as c:
        assert c.cmd("QUIT").last == BYE
        assert c.expect_closed(timeout=5) == b""
    with SMTPClient(server.smtps, implicit_tls=True) as c:
        assert c.cmd("QUIT").last == BYE
        assert c.expect_closed(timeout=5) == b""


def test_quit_right_after_handshake(server):
    """A client may send its first command as soon as the TLS handshake is
    done, before the 220 has arrived (s_client does): the 221 must still be
    sent before the close."""
    for _ in range(10):
        with SMTPClient(server.smtps, implicit_tls=True, greeting=False) as c:
            c.send("QUIT\r\n")
            assert c.reply().last == "220 mail.example.test ESMTP ready"
            assert c.reply().last == BYE
            c.expect_closed()


def test_command_right_after_starttls_handshake(server):
    for _ in range(10):
        with plain(server) as c:
            c.starttls()
            c.send("EHLO client.example.test\r\nQUIT\r\n")
            assert c.reply().code == 250
            assert c.reply().last == BYE
            c.expect_closed()


def test_no_fd_leak(server):
    """Sessions that end (QUIT, EOF, TLS or not) give their socket back."""
    # the sessions' sockets are the smtp process's
    fds = pathlib.Path(f"/proc/{server.child_pid('smtpgate-smtp')}/fd")

    def cycle():
        with mx(server) as c:
            assert c.cmd("QUIT").last == BYE
        with plain(server) as c:
            pass  # EOF without QUIT
        with tls(server) as c:
            assert c.cmd("QUIT").last == BYE

    cycle()
    before = len(list(fds.iterdir()))
    for _ in range(20):
        cycle()
    # the sessions are freed asynchronously: poll
    wait_for(lambda: len(list(fds.iterdir())) <= before + 2, timeout=10,
             what=f"fd count back near {before}")

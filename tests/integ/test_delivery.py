"""Delivery: the scheduler, smarthost/LMTP routes, retries, DSNs
and durability against real peers:

- python3-aiosmtpd as a scriptable smarthost sink on 127.0.0.1 (STARTTLS
  with the test PKI's certificate): accepts, answers 4xx n times, or 5xx;
- Postfix from Debian as a smarthost requiring SASL (Dovecot) over STARTTLS,
  relaying on to an aiosmtpd sink;
- Dovecot LMTP delivering into a Maildir;
- hostile peers (garbage, huge replies, silence, a close mid-DATA, a bad
  certificate) while another destination keeps working;
- kill -9 in the middle of DATA.

Schedules are compressed (retry_min = 1s).
"""
import email
import email.policy
import json
import os
import pathlib
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import zoo
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import (PASSWORD, SMTPGATE, USER, Server, free_port, spool_body, wait_for,
                      wait_port)

SENDER = USER  # alice@example.test (sender binding: the login's own address)


class Sink:
    """An aiosmtpd server recording what it accepts. `script` is a list of
    (code, text) answered to DATA in order (then 250); `rcpt_script` maps a
    recipient to a fixed RCPT answer."""

    controller_class = Controller  # subclasses may serve with their own SMTP

    def __init__(self, pki, starttls=True, auth=None, script=(), rcpt_script=None,
                 data_delay=0.0, port=None):
        self.messages = []  # (time, mail_from, rcpts, bytes)
        self.attempts = []  # times DATA was answered (any result)
        self.script = list(script)
        self.rcpt_script = rcpt_script or {}
        self.data_delay = data_delay
        self.port = port or free_port()
        kw = {}
        if starttls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(pki.dir / "mail-chain.pem", pki.dir / "mail.key")
            kw["tls_context"] = ctx
        if auth is not None:
            user, password = auth

            def authenticator(server, session, envelope, mechanism, data):
                ok = (isinstance(data, LoginPassword) and data.login.decode() == user and
                      data.password.decode() == password)
                return AuthResult(success=ok)

            kw.update(authenticator=authenticator, auth_require_tls=True, auth_required=True)
        self.controller = self.controller_class(self, hostname="127.0.0.1", port=self.port,
                                                server_hostname="sink.example.test", **kw)
        self.controller.start()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_script:
            return self.rcpt_script[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.attempts.append(time.time())
        if self.script:
            code, text = self.script.pop(0)
            return f"{code} {text}"
        self.messages.append((time.time(), envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content))
        return "250 2.0.0 queued as sink"

    def stop(self):
        self.controller.stop()


def relay_conf(sink_port, pki, extra="", retry="retry_min = 1s\nretry_max = 8s"):
    return f"""
[relay]
route = smarthost 127.0.0.1:{sink_port}
tls = starttls
verify = peer+host
ca = {pki.root}
{retry}
timeout = 5s
{extra}
"""


def submit(server, rcpts, msg, sender=SENDER):
    """Authenticated submission (STARTTLS + AUTH PLAIN) to the server."""
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=15) as c:
        c.starttls(context=ctx)
        c.login(USER, PASSWORD)
        c.sendmail(sender, rcpts, msg)


def submit_plain(server, rcpts, msg, sender):
    """Unauthenticated mail to a local domain on the mx listener (allows <>)."""
    with smtplib.SMTP("127.0.0.1", server.mx, timeout=15) as c:
        c.sendmail(sender, rcpts, msg)


def message(marker, to="bob@example.net"):
    return (f"From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: delivery {marker}\r\n"
            f"Message-ID: <{marker}@client.example.test>\r\n\r\n"
            f"hello {marker}\r\n.leading dot\r\nend\r\n").encode()


def deliveries(server, **match):
    return [r for r in server.events("delivery")
            if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture
def sink(pki):
    s = Sink(pki)
    yield s
    s.stop()


@pytest.fixture
def started(make_server):
    """Starts servers made with make_server and yields them."""
    def start(**kw):
        return make_server(**kw).start()
    return start


# --- (a) smarthost to an aiosmtpd sink ------------------------------------------------

def test_delivered_bytes_equal_spool_body(make_server, pki):
    # the sink is not there yet: the first attempt is refused, so the spool
    # body can be captured before delivery; then the sink appears
    port = free_port()
    s = make_server(extra=relay_conf(port, pki)).start()
    submit(s, ["bob@example.net"], message("bytes1"))
    qid = s.wait_event("accepted")["queue_id"]
    s.wait_event("delivery", lambda r: r["queue_id"] == qid and r["result"] == "deferred")
    body = spool_body(s, qid)
    s2 = Sink(pki, port=port)
    try:
        wait_for(lambda: s2.messages, timeout=20, what="delivery to the sink")
        _, mail_from, rcpts, data = s2.messages[0]
        assert mail_from == SENDER and rcpts == ["bob@example.net"]
        assert data == body
        assert data.startswith(b"Received: ")
        assert data.endswith(message("bytes1"))
        wait_for(lambda: not s.queued(), what="the queue to empty")
        ev = deliveries(s, queue_id=qid, result="sent")[0]
        assert ev["code"] == 250 and ev["relay"] == f"127.0.0.1:{port}"
    finally:
        s2.stop()


def test_retry_schedule_4xx_twice_then_250(make_server, pki):
    sink = Sink(pki, script=[(451, "4.3.0 try again later"), (451, "4.3.0 still busy")])
    try:
        s = make_server(extra=relay_conf(sink.port, pki)).start()
        submit(s, ["bob@example.net"], message("retry1"))
        wait_for(lambda: sink.messages, timeout=30, what="delivery after two 451")
        assert len(sink.attempts) == 3
        d1 = sink.attempts[1] - sink.attempts[0]
        d2 = sink.attempts[2] - sink.attempts[1]
        # retry_min = 1s doubling (+0-10% jitter, rounding to the attempt)
        assert 0.9 <= d1 <= 1.8, d1
        assert 1.9 <= d2 <= 3.0, d2
        wait_for(lambda: not s.queued(), what="the queue to empty")
        time.sleep(1.5)
        assert len(sink.messages) == 1  # delivered once
        evs = deliveries(s, rcpt="bob@example.net")
        assert [e["result"] for e in evs] == ["deferred", "deferred", "sent"]
        assert evs[0]["code"] == 451 and evs[0]["enhanced"] == "4.3.0"
        assert evs[0]["next_try"] and evs[0]["finding"]
    finally:
        sink.stop()


def test_5xx_bounces_once_with_rfc3464_dsn(make_server, pki):
    sink = Sink(pki, script=[(550, "5.1.1 mailbox unavailable")])
    try:
        s = make_server(extra=relay_conf(sink.port, pki)).start()
        submit(s, ["nobody@example.net"], message("bounce1", to="nobody@example.net"))
        qid = s.wait_event("accepted")["queue_id"]
        # the DSN goes to the sender, through the same smarthost
        wait_for(lambda: sink.messages, timeout=20, what="the DSN")
        wait_for(lambda: not s.queued(), what="the queue to empty")
        time.sleep(1.5)
        assert len(sink.messages) == 1
        _, mail_from, rcpts, data = sink.messages[0]
        assert mail_from in ("", "<>") and rcpts == [SENDER]
        m = email.message_from_bytes(data, policy=email.policy.default)
        assert m.get_content_type() == "multipart/report"
        assert m.get_param("report-type") == "delivery-status"
        assert m["Auto-Submitted"] == "auto-replied"
        parts = list(m.iter_parts())
        assert [p.get_content_type() for p in parts] == [
            "text/plain", "message/delivery-status", "text/rfc822-headers"]
        assert "nobody@example.net" in parts[0].get_content()
        ds = parts[1].get_payload()  # [per-message, per-recipient] header blocks
        assert ds[0]["Reporting-MTA"] == "dns; mail.example.test"
        assert ds[1]["Final-Recipient"] == "rfc822; nobody@example.net"
        assert ds[1]["Action"] == "failed"
        assert ds[1]["Status"] == "5.1.1"
        assert ds[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 mailbox unavailable"
        assert b"Message-ID: <bounce1@client.example.test>" in parts[2].get_payload(
            decode=True) or "bounce1@client.example.test" in str(parts[2])
        ev = deliveries(s, queue_id=qid)[0]
        assert ev["result"] == "bounced" and ev["code"] == 550 and ev["dsn"]
        assert ev["finding"] and ev["cause"]
    finally:
        sink.stop()


def test_null_sender_5xx_gets_no_dsn(make_server, pki):
    sink = Sink(pki, script=[(554, "5.7.1 rejected")])
    try:
        s = make_server(extra=relay_conf(sink.port, pki)).start()
        submit_plain(s, ["bob@example.test"], message("nullsender", to="bob@example.test"),
                     sender="")
        qid = s.wait_event("accepted")["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
        assert ev["result"] == "failed" and "null sender" in ev["dsn"]
        wait_for(lambda: not s.queued(), what="the queue to empty")
        time.sleep(2)
        assert sink.messages == [] and len(sink.attempts) == 1
        assert not s.events("dsn")
    finally:
        sink.stop()


# --- (b) authentication: fail closed, credentials, Postfix ------------------------------

def secret_file(d, text, mode=0o600):
    p = d / "relay.secret"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_smarthost_without_auth_gets_nothing(make_server, pki, tmp_path):
    # a STARTTLS smarthost that offers no AUTH at all (aiosmtpd always offers
    # it, so a scripted one): nothing may be sent
    tls = zoo.tls_server_context(pki.dir / "mail-chain.pem", pki.dir / "mail.key")
    peer = zoo.ScriptServer(lambda c, srv: zoo.smtp_dialogue(c, srv, tls_ctx=tls))
    sink = None
    try:
        cred = secret_file(tmp_path, "relayuser relay-secret\n")
        s = make_server(extra=relay_conf(peer.port, pki,
                                         f"auth = PLAIN\ncredentials = {cred}")).start()
        submit(s, ["bob@example.net"], message("noauth"))
        qid = s.wait_event("accepted")["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
        assert ev["result"] == "held" and ev["level"] == "error"
        assert "AUTH PLAIN required" in ev["reason"] and "does not offer AUTH" in ev["reason"]
        assert ev["finding"] == "auth-not-offered" and ev["cause"]
        assert "relay-secret" not in s.log.read_text()
        time.sleep(2)
        sent = [ln for t in peer.transcripts for ln in t]
        assert "STARTTLS" in sent
        assert not [ln for ln in sent if ln.upper().startswith(("MAIL", "RCPT", "DATA", "AUTH"))]
        assert len(deliveries(s, queue_id=qid)) == 1  # held: not retried by itself
        q = s.queued()
        assert [m["id"] for m in q] == [qid]
        show = json.loads(subprocess.run(
            [SMTPGATE, "queue", "show", qid, "-c", str(s.conf), "--json"],
            capture_output=True, text=True, check=True).stdout)
        assert show["delivery"][0]["state"] == "held"
        assert "does not offer AUTH" in show["delivery"][0]["reason"]
        assert show["next_try"] is None and show["waits_for_flush"] is True
        # an admin fixes the smarthost, then flushes: now it goes
        peer.stop()
        sink = Sink(pki, auth=("relayuser", "relay-secret"), port=peer.port)
        r = subprocess.run([SMTPGATE, "queue", "flush", "-c", str(s.conf)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: sink.messages, timeout=20, what="delivery after flush")
        wait_for(lambda: not s.queued(), what="the queue to empty")
    finally:
        peer.stop()
        if sink is not None:
            sink.stop()


def test_smarthost_535_is_held_not_bounced(make_server, pki, tmp_path):
    tls = zoo.tls_server_context(pki.dir / "mail-chain.pem", pki.dir / "mail.key")

    def refuse(conn, line):
        conn.send("535 5.7.8 Authentication credentials invalid\r\n")

    peer = zoo.ScriptServer(lambda c, srv: zoo.smtp_dialogue(
        c, srv, ehlo=("PIPELINING", "AUTH PLAIN LOGIN"), tls_ctx=tls, auth=refuse))
    try:
        cred = secret_file(tmp_path, "relayuser wrong-password\n")
        s = make_server(extra=relay_conf(peer.port, pki,
                                         f"auth = PLAIN\ncredentials = {cred}")).start()
        submit(s, ["bob@example.net"], message("bad535"))
        qid = s.wait_event("accepted")["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
        assert ev["result"] == "held" and ev["code"] == 535
        assert ev["finding"] == "auth-credentials-invalid" and ev["cause"]
        assert "wrong-password" not in s.log.read_text()
        time.sleep(3)  # not retried by itself (retry_min is 1s)
        assert len(deliveries(s, queue_id=qid)) == 1
        assert not s.events("dsn") and s.queued()
    finally:
        peer.stop()


def test_credentials_file_mode_is_checked(make_server, pki, tmp_path):
    cred = secret_file(tmp_path, "u p\n", mode=0o644)
    s = make_server(extra=relay_conf(free_port(), pki, f"auth = PLAIN\ncredentials = {cred}"))
    r = subprocess.run([SMTPGATE, "serve", "-c", str(s.conf), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "mode 0600 or stricter" in r.stderr and "[relay]" in r.stderr


def test_environment_credentials(make_server, pki, tmp_path, monkeypatch):
    sink = Sink(pki, auth=("envuser", "env-secret"))
    try:
        s = make_server(extra=relay_conf(sink.port, pki))
        monkeypatch.setenv("SMTPACCOUNT", "envuser")
        monkeypatch.setenv("SMTPPASSWORD", "env-secret")
        monkeypatch.setenv("SMTPAUTHMETHOD", "LOGIN")
        s.start()
        submit(s, ["bob@example.net"], message("envcreds"))
        wait_for(lambda: sink.messages, timeout=20, what="delivery with env credentials")
        assert "env-secret" not in s.log.read_text()
    finally:
        sink.stop()


def test_xoauth2_token_command(make_server, pki, tmp_path):
    seen = []

    class OAuthSink(Sink):
        async def auth_XOAUTH2(self, server, args):
            import base64
            blob = base64.b64decode(args[1]).decode()
            seen.append(blob)
            ok = blob == "user=tokenuser\x01auth=Bearer tok-123\x01\x01"
            return AuthResult(success=ok, handled=False)

    sink = OAuthSink(pki, auth=("x", "y"))
    try:
        script = tmp_path / "token.sh"
        script.write_text("#!/bin/sh\necho tok-123\n")
        script.chmod(0o700)
        cred = secret_file(tmp_path, f"tokenuser !{script}\n")
        s = make_server(extra=relay_conf(sink.port, pki,
                                         f"auth = XOAUTH2\ncredentials = {cred}")).start()
        submit(s, ["bob@example.net"], message("xoauth"))
        wait_for(lambda: sink.messages, timeout=20, what="delivery with XOAUTH2")
        assert seen == ["user=tokenuser\x01auth=Bearer tok-123\x01\x01"]
        assert "tok-123" not in s.log.read_text()
    finally:
        sink.stop()


class _TokenSink(Sink):
    """Accepts XOAUTH2 for tokenuser with a token in self.good; records each blob."""

    def __init__(self, pki, good):
        self.good = set(good)
        self.seen = []
        super().__init__(pki, auth=("x", "y"))

    async def auth_XOAUTH2(self, server, args):
        import base64
        blob = base64.b64decode(args[1]).decode()
        self.seen.append(blob.split("Bearer ", 1)[1].rstrip("\x01"))
        ok = any(blob == f"user=tokenuser\x01auth=Bearer {t}\x01\x01" for t in self.good)
        return AuthResult(success=ok, handled=False)


def test_xoauth2_expired_token_is_refreshed_in_the_same_session(make_server, pki, tmp_path):
    # the cached token (tok-1) was revoked or expired before token_ttl: the
    # refusal makes the command run again and AUTH is tried once more at once
    sink = _TokenSink(pki, good=["tok-2", "tok-3"])
    try:
        count = tmp_path / "count"
        script = tmp_path / "token.sh"
        script.write_text(f"#!/bin/sh\nn=$(cat {count} 2>/dev/null || echo 0)\n"
                          f"n=$((n+1))\necho $n > {count}\necho tok-$n\n")
        script.chmod(0o700)
        cred = secret_file(tmp_path, f"tokenuser !{script}\n")
        s = make_server(extra=relay_conf(sink.port, pki,
                                         f"auth = XOAUTH2\ncredentials = {cred}")).start()
        submit(s, ["bob@example.net"], message("refresh1"))
        wait_for(lambda: len(sink.messages) == 1, timeout=20, what="delivery")
        assert sink.seen == ["tok-1", "tok-2"]
        # the sink keeps the message before its 250 reaches the relay process
        s.wait_event("delivery")
        assert [e["result"] for e in deliveries(s)] == ["sent"]  # never held
        # the fresh token is cached now: no command run for the next message
        submit(s, ["bob@example.net"], message("refresh2"))
        wait_for(lambda: len(sink.messages) == 2, timeout=20, what="second delivery")
        assert sink.seen == ["tok-1", "tok-2", "tok-2"]
        assert count.read_text().strip() == "2"
        assert "tok-1" not in s.log.read_text() and "tok-2" not in s.log.read_text()
    finally:
        sink.stop()


def test_xoauth2_token_from_file_is_read_at_each_delivery(make_server, pki, tmp_path):
    # "USER TOKEN": a refresher outside smtpgate rewrites the file
    sink = _TokenSink(pki, good=["tok-A", "tok-B"])
    try:
        cred = secret_file(tmp_path, "tokenuser tok-A\n")
        s = make_server(extra=relay_conf(sink.port, pki,
                                         f"auth = XOAUTH2\ncredentials = {cred}")).start()
        submit(s, ["bob@example.net"], message("file1"))
        wait_for(lambda: len(sink.messages) == 1, timeout=20, what="delivery with tok-A")
        cred.write_text("tokenuser tok-B\n")
        sink.good = {"tok-B"}
        submit(s, ["bob@example.net"], message("file2"))
        wait_for(lambda: len(sink.messages) == 2, timeout=20, what="delivery with tok-B")
        assert sink.seen == ["tok-A", "tok-B"]
        # a token the server refuses, and the file still holds the same one:
        # AUTH is not repeated with it; the message is held for an admin
        sink.good = set()
        submit(s, ["bob@example.net"], message("file3"))
        ev = s.wait_event("delivery", lambda r: r["result"] == "held")
        assert ev["code"] == 535
        assert sink.seen == ["tok-A", "tok-B", "tok-B"]
    finally:
        sink.stop()


# --- (e) bad peers: the message stays queued with a precise reason ------------------------

def _garbage(conn, srv):
    conn.send(b"\x16\x03\x01garbage \x00\xff not smtp at all\r\nmore garbage\r\n")
    time.sleep(1)


def _huge(conn, srv):
    try:
        for _ in range(4000):  # ~4 MB of continuation lines, never a final one
            conn.send("220-" + "x" * 1000 + "\r\n")
    except OSError:
        pass


def _silent(conn, srv):
    time.sleep(8)


def _close_mid_data(tls):
    def run(conn, srv):
        conn.send("220 zoo.test ESMTP\r\n")
        while True:
            line = conn.readline()
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                conn.send("250-zoo.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
                          if not isinstance(conn.sock, ssl.SSLSocket)
                          else "250-zoo.test\r\n250 8BITMIME\r\n")
            elif verb == "STARTTLS":
                conn.send("220 2.0.0 go ahead\r\n")
                conn.starttls(tls)
            elif verb in ("MAIL", "RCPT"):
                conn.send("250 2.0.0 OK\r\n")
            elif verb == "DATA":
                conn.send("354 go\r\n")
                conn.readline()
                conn.sock.close()  # in the middle of the message
                return
            else:
                conn.send("502 5.5.1 no\r\n")
    return run


def test_bad_peers_keep_mail_queued_and_others_move(make_server, pki):
    tls = zoo.tls_server_context(pki.dir / "mail-chain.pem", pki.dir / "mail.key")
    badcert = zoo.tls_server_context(pki.dir / "other-chain.pem", pki.dir / "other.key")
    peers = {
        "garbage.test": zoo.ScriptServer(_garbage),
        "huge.test": zoo.ScriptServer(_huge),
        "silent.test": zoo.ScriptServer(_silent),
        "closes.test": zoo.ScriptServer(_close_mid_data(tls)),
        "badcert.test": zoo.ScriptServer(
            lambda c, srv: zoo.smtp_dialogue(c, srv, tls_ctx=badcert)),
    }
    good = Sink(pki)
    try:
        routes = "".join(f"""
[route {d}]
route = smarthost 127.0.0.1:{p.port}
ca = {pki.root}
timeout = 2s
retry_min = 30s
""" for d, p in peers.items())
        routes += f"""
[route good.test]
route = smarthost 127.0.0.1:{good.port}
ca = {pki.root}
"""
        s = make_server(extra=routes).start()
        ids = {}
        for d in list(peers) + ["good.test"]:
            submit(s, [f"user@{d}"], message(d.split(".")[0], to=f"user@{d}"))
            ids[d] = s.wait_event("accepted", lambda r: r["queue_id"] not in ids.values())[
                "queue_id"]
        wait_for(lambda: good.messages, timeout=20, what="the good destination")
        expect = {
            "garbage.test": ("reply-malformed", "greeting"),
            "huge.test": ("reply-malformed", "greeting"),
            "silent.test": ("greeting-timeout", "greeting"),
            "closes.test": ("connection-closed", "DATA"),
            "badcert.test": ("cert-name-mismatch", "STARTTLS"),
        }
        for d, (finding, step) in expect.items():
            ev = s.wait_event("delivery", lambda r: r["queue_id"] == ids[d], timeout=20)
            assert ev["result"] == "deferred", (d, ev)
            assert ev["finding"] == finding, (d, ev)
            assert ev["reason"].startswith(step), (d, ev)
            show = json.loads(subprocess.run(
                [SMTPGATE, "queue", "show", ids[d], "-c", str(s.conf), "--json"],
                capture_output=True, text=True, check=True).stdout)
            st = show["delivery"][0]
            assert st["state"] == "deferred" and st["reason"] == ev["reason"], (d, st)
        assert sorted(m["id"] for m in s.queued()) == sorted(ids[d] for d in expect)
        assert len(good.messages) == 1
    finally:
        for p in peers.values():
            p.stop()
        good.stop()


# --- (d) kill -9 during delivery loses nothing --------------------------------------------

def test_kill9_mid_data_redelivers(make_server, pki):
    class Stall(Sink):
        stall = True
        got = []

        async def handle_DATA(self, server, session, envelope):
            import asyncio
            if Stall.stall:
                Stall.got.append(time.time())
                await asyncio.sleep(30)  # the whole message is here; no reply yet
                return "451 4.3.0 too late"
            return await Sink.handle_DATA(self, server, session, envelope)

    sink = Stall(pki)
    try:
        s = make_server(extra=relay_conf(sink.port, pki, retry="retry_min = 1s\ntimeout = 60s"))
        s.start()
        submit(s, ["bob@example.net"], message("kill9"))
        qid = s.wait_event("accepted")["queue_id"]
        wait_for(lambda: Stall.got, timeout=20, what="the message in the sink's DATA")
        s.kill()
        assert [m["id"] for m in s.queued()] == [qid]
        Stall.stall = False
        s.start()
        wait_for(lambda: sink.messages, timeout=30, what="delivery after restart")
        wait_for(lambda: not s.queued(), what="the queue to empty")
        assert sink.messages[0][3].endswith(message("kill9"))
        assert deliveries(s, queue_id=qid, result="sent")
    finally:
        sink.stop()


# --- (c) LMTP into a Maildir (Dovecot) -------------------------------------------------------

class DovecotLMTP:
    """A private Dovecot with only LMTP, on a unix socket and on a loopback
    TCP port, delivering into D/mail/USER (Maildir)."""

    def __init__(self, d):
        self.dir = d
        self.base = d / "run"
        self.socket = self.base / "lmtp"
        self.port = free_port()
        # Dovecot will not deliver as root: the Maildir belongs to nobody, in
        # a folder nobody can reach (pytest's tmp folders are 0700)
        self.top = pathlib.Path(tempfile.mkdtemp(prefix="sg-lmtp-"))
        self.top.chmod(0o755)
        self.mail = self.top / "mail"
        self.mail.mkdir()
        shutil.chown(self.mail, "nobody", "nogroup")
        self.log = d / "dovecot.log"
        self.conf = d / "dovecot.conf"
        (d / "state").mkdir(exist_ok=True)
        self.conf.write_text(f"""\
base_dir = {self.base}
state_dir = {d / 'state'}
instance_name = smtpgate-lmtp-{d.name}
protocols = lmtp
log_path = {self.log}
default_internal_user = root
default_internal_group = root
default_login_user = root
ssl = no
mail_location = maildir:{self.mail}/%n
lmtp_rcpt_check_quota = no
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.mail}/%n allow_all_users=yes
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
""")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: self.socket.exists(), timeout=20, what="dovecot lmtp socket")
        wait_port(self.port, proc=self.proc)

    def maildir(self, user):
        new = self.mail / user / "new"
        return sorted(new.iterdir()) if new.exists() else []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture
def lmtp(tmp_path_factory):
    if shutil.which("dovecot") is None or not os.path.exists("/usr/lib/dovecot/lmtp"):
        pytest.skip("dovecot-core and dovecot-lmtpd not installed")
    # a short path: UNIX socket names are limited to 107 bytes
    d = DovecotLMTP(tmp_path_factory.mktemp("lm"))
    yield d
    d.stop()


@pytest.mark.parametrize("over", ["unix", "tcp"])
def test_lmtp_into_maildir(make_server, lmtp, over):
    target = str(lmtp.socket) if over == "unix" else f"127.0.0.1:{lmtp.port}"
    s = make_server(extra=f"""
[route example.test]
route = lmtp {target}
retry_min = 1s
timeout = 10s
""").start()
    # two recipients: LMTP answers for each after DATA (RFC 2033 4.2)
    submit(s, ["carol@example.test", "dave@example.test"],
           message(f"lmtp-{over}", to="carol@example.test"))
    qid = s.wait_event("accepted")["queue_id"]
    wait_for(lambda: lmtp.maildir("carol") and lmtp.maildir("dave"), timeout=20,
             what="the Maildir files")
    wait_for(lambda: not s.queued(), what="the queue to empty")
    data = lmtp.maildir("carol")[0].read_bytes()
    assert f"hello lmtp-{over}".encode() in data
    evs = deliveries(s, queue_id=qid, result="sent")
    assert sorted(e["rcpt"] for e in evs) == ["carol@example.test", "dave@example.test"]
    assert all(e["relay"] == target for e in evs)


# --- (b) Postfix as the smarthost (SASL over STARTTLS), relaying on to a sink --------------

@pytest.fixture
def postfix(tmp_path, pki):
    """bench/postfix.sh's private Postfix + Dovecot SASL instance, changed to
    relay what it accepts on to an aiosmtpd sink instead of discarding it."""
    if os.geteuid() != 0 or shutil.which("postfix") is None or shutil.which("dovecot") is None:
        pytest.skip("needs root, postfix and dovecot-core")
    onward = Sink(pki, starttls=False)
    envf, stop = tmp_path / "postfix.env", tmp_path / "postfix.stop"
    maincf = (f"default_transport = smtp\nrelay_transport = smtp\n"
              f"relayhost = [127.0.0.1]:{onward.port}\nsmtp_tls_security_level = none\n")
    log = open(tmp_path / "postfix.out", "wb")
    root = pathlib.Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        ["sh", str(root / "bench" / "postfix.sh"), "sh", "-c",
         f"env | grep ^BENCH_ > {envf}.tmp && mv {envf}.tmp {envf}; "
         f"while [ ! -e {stop} ]; do sleep 0.2; done"],
        env={**os.environ, "BENCH_POSTFIX_MAINCF": maincf, "BENCH_POSTFIX_MAXPROC": "20"},
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: envf.exists() or proc.poll() is not None, timeout=90,
                 what="postfix to start")
        if not envf.exists():
            pytest.fail("bench/postfix.sh failed: " +
                        (tmp_path / "postfix.out").read_text(errors="replace"))
        env = dict(line.split("=", 1) for line in envf.read_text().splitlines())
        env["onward"] = onward
        yield env
    finally:
        stop.touch()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        onward.stop()


def test_postfix_smarthost_with_sasl_over_starttls(make_server, postfix, tmp_path):
    password = pathlib.Path(postfix["BENCH_PASSFILE"]).read_text().strip()
    cred = secret_file(tmp_path, f"{postfix['BENCH_USER']} {password}\n")
    s = make_server(extra=f"""
[relay]
route = smarthost {postfix['BENCH_HOST']}:{postfix['BENCH_PORT']}
tls = starttls
verify = peer+host
ca = {postfix['BENCH_CAFILE']}
auth = PLAIN
credentials = {cred}
retry_min = 1s
""").start()
    submit(s, ["carol@far.example"], message("postfix1", to="carol@far.example"))
    qid = s.wait_event("accepted")["queue_id"]
    ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=30)
    assert ev["result"] == "sent" and ev["code"] == 250, ev
    assert ev["relay"] == f"127.0.0.1:{postfix['BENCH_PORT']}"
    onward = postfix["onward"]
    wait_for(lambda: onward.messages, timeout=60, what="Postfix to relay the message on")
    _, mail_from, rcpts, data = onward.messages[0]
    assert mail_from == SENDER and rcpts == ["carol@far.example"]
    assert b"hello postfix1" in data
    assert password not in s.log.read_text()
    wait_for(lambda: not s.queued(), what="the queue to empty")


def test_queue_del_waits_for_a_running_delivery(make_server, pki):
    class Slow(Sink):
        got = []

        async def handle_DATA(self, server, session, envelope):
            import asyncio
            Slow.got.append(time.time())
            await asyncio.sleep(2)
            return await Sink.handle_DATA(self, server, session, envelope)

    sink = Slow(pki)
    try:
        s = make_server(extra=relay_conf(sink.port, pki)).start()
        submit(s, ["bob@example.net"], message("delwait"))
        qid = s.wait_event("accepted")["queue_id"]
        wait_for(lambda: Slow.got, timeout=20, what="the delivery to be in DATA")
        t0 = time.time()
        r = subprocess.run([SMTPGATE, "queue", "del", qid, "-c", str(s.conf)],
                           capture_output=True, text=True, timeout=90)
        # it waited for the delivery (which sent the message and removed it)
        assert time.time() - t0 >= 1.0
        assert r.returncode == 1 and "no such message" in r.stderr, r
        assert len(sink.messages) == 1 and not s.queued()
        assert deliveries(s, queue_id=qid, result="sent")
    finally:
        sink.stop()


def test_mx_route_is_wired(make_server, pki):
    # the full MX cases (nsd, DANE, MTA-STS) are in test_route_mx.py; here only
    # that route = mx goes through route_mx: DNS unreachable -> deferred, reason
    s = make_server(extra=f"""
[relay]
route = mx
resolver = 127.0.0.1:{free_port()}
dnssec_anchor = none
retry_min = 1m
""").start()
    submit(s, ["bob@example.net"], message("mx1"))
    qid = s.wait_event("accepted")["queue_id"]
    ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=60)
    assert ev["result"] == "deferred" and ev["relay"] == "mx:example.net", ev
    assert ev["reason"].startswith("MX of example.net: "), ev
    assert [m["id"] for m in s.queued()] == [qid]


def test_expiry_bounces_with_4_4_7(make_server, pki):
    # bob's mailbox is always busy (451 to RCPT); the sender's DSN is accepted
    sink = Sink(pki, rcpt_script={"bob@example.net": "451 4.2.1 mailbox busy"})
    try:
        s = make_server(extra=relay_conf(sink.port, pki,
                                         retry="retry_min = 1s\nretry_max = 1s\nexpire = 3s")
                        ).start()
        submit(s, ["bob@example.net"], message("expire1"))
        qid = s.wait_event("accepted")["queue_id"]
        wait_for(lambda: sink.messages, timeout=30, what="the DSN")
        wait_for(lambda: not s.queued(), what="the queue to empty")
        evs = deliveries(s, queue_id=qid)
        assert [e["result"] for e in evs][-1] == "bounced"
        assert all(e["result"] == "deferred" for e in evs[:-1]) and len(evs) >= 3
        assert evs[-1]["enhanced"] == "4.4.7"
        _, mail_from, rcpts, data = sink.messages[0]
        assert rcpts == [SENDER]
        m = email.message_from_bytes(data, policy=email.policy.default)
        ds = list(m.iter_parts())[1].get_payload()
        assert ds[1]["Status"] == "4.4.7" and ds[1]["Action"] == "failed"
        assert ds[1]["Diagnostic-Code"] == "smtp; 451 4.2.1 mailbox busy"
        assert "delivery time expired" in list(m.iter_parts())[0].get_content()
    finally:
        sink.stop()


def test_audit_relay_verify_none(make_server, pki, tmp_path):
    cred = secret_file(tmp_path, "u p\n")
    s = make_server(extra=f"""
[relay]
route = smarthost 127.0.0.1:{free_port()}
verify = none
auth = PLAIN
credentials = {cred}
[route example.org]
route = smarthost 127.0.0.1:{free_port()}
verify = none
""")
    r = subprocess.run([SMTPGATE, "audit", "-c", str(s.conf), "--json"],
                       capture_output=True, text=True)
    doc = json.loads(r.stdout)
    found = [f for f in doc["findings"] if f["id"] == "relay-verify-none"]
    assert sorted((f["severity"], f["evidence"]) for f in found) == [
        ("error", "[relay] verify = none with auth = PLAIN"),
        ("warning", "[route example.org] verify = none")]
    assert r.returncode == 1


def test_environment_verify_mode_none(make_server, pki, monkeypatch):
    # a smarthost whose certificate names someone else: refused with the
    # default verify = peer+host, delivered when SMTPOPENSSLVERIFYMODE=none
    # supplies the setting the config leaves out
    class Other(Sink):
        pass

    sink = Other(pki, starttls=False)
    sink.stop()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.dir / "other-chain.pem", pki.dir / "other.key")
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port,
                                 server_hostname="sink.example.test", tls_context=ctx)
    sink.controller.start()
    try:
        conf = f"""
[relay]
route = smarthost 127.0.0.1:{sink.port}
ca = {pki.root}
retry_min = 1s
"""
        monkeypatch.setenv("SMTPOPENSSLVERIFYMODE", "none")
        s = make_server(extra=conf).start()
        submit(s, ["bob@example.net"], message("envverify"))
        wait_for(lambda: sink.messages, timeout=20, what="delivery with verify none")
    finally:
        sink.stop()


def test_hold_and_release_on_a_running_server(make_server, pki):
    port = free_port()  # nothing listens yet: the first attempt is deferred
    s = make_server(extra=relay_conf(port, pki, retry="retry_min = 10m")).start()
    submit(s, ["bob@example.net"], message("holdrel"))
    qid = s.wait_event("accepted")["queue_id"]
    s.wait_event("delivery", lambda r: r["queue_id"] == qid and r["result"] == "deferred")
    r = subprocess.run([SMTPGATE, "queue", "hold", qid, "-c", str(s.conf)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sink = Sink(pki, port=port)
    try:
        time.sleep(1)
        assert sink.messages == []  # held: not delivered (and next try is 10m away)
        r = subprocess.run([SMTPGATE, "queue", "release", qid, "-c", str(s.conf)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        # released: the server rescans at once and tries it now
        wait_for(lambda: sink.messages, timeout=10, what="delivery after release")
        wait_for(lambda: not s.queued(), what="the queue to empty")
    finally:
        sink.stop()


def test_concurrency_per_destination(make_server, pki):
    class Counting(Sink):
        active = 0
        peak = 0

        async def handle_DATA(self, server, session, envelope):
            import asyncio
            Counting.active += 1
            Counting.peak = max(Counting.peak, Counting.active)
            await asyncio.sleep(0.5)
            Counting.active -= 1
            return await Sink.handle_DATA(self, server, session, envelope)

    sink = Counting(pki)
    try:
        # the pool has 2 + 10 workers (another route): the limit is the destination's
        s = make_server(extra=relay_conf(sink.port, pki, "concurrency = 2") + f"""
[route other.test]
route = smarthost 127.0.0.1:{free_port()}
""").start()
        for i in range(6):
            submit(s, ["bob@example.net"], message(f"conc{i}"))
        wait_for(lambda: len(sink.messages) == 6, timeout=30, what="six deliveries")
        assert Counting.peak == 2  # never more than 2 at a time, and the pool used both
    finally:
        sink.stop()

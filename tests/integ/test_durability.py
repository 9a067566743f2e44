"""Durability and signals: kill -9 under load loses no message that got a
250; SIGTERM lets sessions finish (or closes them after the grace period);
SIGHUP reloads users and certificates without dropping open sessions; the
Received: header records ESMTPSA and the TLS parameters."""
import re
import signal
import smtplib
import ssl
import threading
import time
import uuid

import pytest

from conftest import (PASSWORD, USER, make_message, msg_id, msg_rcpts, msg_sender, queue_show,
                      spool_body, use_own_certificate, wait_for)
from smtpclient import SMTPClient, client_context

QUEUED_RE = re.compile(r"queued as ([A-Za-z0-9._-]+)")


def verifying_context(server):
    return ssl.create_default_context(cafile=str(server.pki.root))


def received_header(shown):
    values = [h["value"] for h in shown["headers"] if h["name"].lower() == "received"]
    assert len(values) == 1, shown["headers"]
    return " ".join(values[0].split())


# --- kill -9 under load ------------------------------------------------------------

class Sender(threading.Thread):
    """Sends up to `count` messages over one STARTTLS+AUTH session and
    records (queue id, marker, recipient) for every 250."""

    def __init__(self, server, n, count, ctx):
        super().__init__(daemon=True)
        self.server, self.n, self.count, self.ctx = server, n, count, ctx
        self.accepted = []
        self.error = None

    def run(self):
        try:
            with smtplib.SMTP("127.0.0.1", self.server.submission, timeout=30) as s:
                s.starttls(context=self.ctx)
                s.login(USER, PASSWORD)
                for i in range(self.count):
                    mark = f"load-{self.n}-{i}-{uuid.uuid4().hex}"
                    rcpt = f"r{self.n}.{i}@example.test"
                    s.mail(USER)
                    s.rcpt(rcpt)
                    # some bulk so commits overlap the kill
                    body = make_message(USER, rcpt, mark) + ("filler " * 60 + "\r\n") * 20
                    code, resp = s.data(body.encode())
                    if code != 250:
                        self.error = (code, resp)
                        return
                    self.accepted.append((QUEUED_RE.search(resp.decode()).group(1), mark, rcpt))
        except (OSError, smtplib.SMTPException) as e:
            self.error = e


def test_kill_9_under_load_loses_nothing_acknowledged(make_server):
    server = make_server(threads=4).start()
    ctx = verifying_context(server)
    n_threads, per_thread = 8, 25
    senders = [Sender(server, n, per_thread, ctx) for n in range(n_threads)]
    for t in senders:
        t.start()

    def total():
        return sum(len(t.accepted) for t in senders)

    # kill once a good part of the load is through, while it is still going
    wait_for(lambda: total() >= n_threads * per_thread // 4 or
             not any(t.is_alive() for t in senders), timeout=120, what="load")
    running = sum(t.is_alive() for t in senders)
    server.kill()
    for t in senders:
        t.join(timeout=60)
        assert not t.is_alive()
    acked = [a for t in senders for a in t.accepted]
    assert acked, [t.error for t in senders]
    assert running > 0, "the load finished before the kill: raise per_thread"
    assert total() < n_threads * per_thread

    recovers = len(server.events("queue_recover"))
    server.start()
    wait_for(lambda: len(server.events("queue_recover")) > recovers, what="recovery")
    rec = server.events("queue_recover")[-1]
    assert rec["corrupt_moved"] == 0, rec
    print(f"acknowledged before kill -9: {len(acked)}; recovered queue: {rec}")
    queued = {msg_id(m): m for m in server.queued()}
    missing = [a for a in acked if a[0] not in queued]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged messages lost: {missing[:5]}"
    assert len({a[0] for a in acked}) == len(acked), "queue ids not unique"
    for qid, mark, rcpt in acked:
        m = queued[qid]
        assert msg_sender(m) == USER and msg_rcpts(m) == [rcpt], m
        shown = queue_show(server, qid)
        assert msg_sender(shown) == USER and msg_rcpts(shown) == [rcpt]
        body = spool_body(server, qid)  # sizes and SHA-256 checked
        assert f"marker {mark}\r\n".encode() in body
        assert body.endswith(b"filler \r\n"), body[-80:]
    # the restarted server takes mail again
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as s:
        s.starttls(context=ctx)
        s.login(USER, PASSWORD)
        s.sendmail(USER, ["after@example.test"], make_message(USER, "after@example.test", "x"))


# --- SIGTERM -----------------------------------------------------------------------

def authed_session(server):
    c = SMTPClient(server.submission)
    c.submit_ready(USER, PASSWORD, verifying_ctx(server))
    return c


def verifying_ctx(server):
    """Verifies the chain against the test root (host name not checked)."""
    return client_context(server.pki.root)


def test_sigterm_lets_a_session_finish(make_server):
    server = make_server(limits="shutdown_grace = 30s").start()
    with authed_session(server) as c:
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send("Subject: term\r\n\r\nfirst half\r\n")
        server.proc.send_signal(signal.SIGTERM)
        server.wait_event("shutdown")
        assert server.proc.poll() is None
        c.send("second half\r\n.\r\n")
        r = c.reply()
        assert r.last.startswith("250 2.0.0 OK: queued as "), r
        qid = r.last.split()[-1]
        assert c.cmd("QUIT").last == "221 2.0.0 Bye"
    rc = server.proc.wait(timeout=20)
    assert rc == 0, server.stderr_text()
    server.stop()
    assert spool_body(server, qid).endswith(b"first half\r\nsecond half\r\n")


def test_sigterm_closes_idle_session_after_grace(make_server):
    server = make_server(limits="shutdown_grace = 2s").start()
    with authed_session(server) as c:
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        r = c.reply(timeout=20)
        assert r.last == "421 4.3.2 Service shutting down, closing connection", r
        assert time.monotonic() - t0 >= 1.5
        c.expect_closed(timeout=10)
    rc = server.proc.wait(timeout=20)
    assert rc == 0, server.stderr_text()
    server.stop()
    assert server.queued() == []


def test_sigterm_without_sessions_exits_0(make_server):
    server = make_server().start()
    t0 = time.monotonic()
    assert server.stop() == 0, server.stderr_text()
    assert time.monotonic() - t0 < 10


# --- SIGHUP --------------------------------------------------------------------------

def reloads(server):
    return [r for r in server.events("reload") if r.get("result") == "ok"]


def sighup(server):
    before = len(server.events("reload"))
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(server.events("reload")) > before, what="reload event")
    r = server.events("reload")[-1]
    assert r["result"] == "ok", r


def test_sighup_adds_user_keeps_sessions(server):
    carol, carol_pw = "carol@example.test", "carol's new passphrase"
    with authed_session(server) as old:
        with SMTPClient(server.submission) as c:
            c.ehlo()
            c.starttls(verifying_ctx(server))
            c.ehlo()
            assert c.auth_plain(carol, carol_pw).last == "535 5.7.8 Authentication credentials invalid"
        server.add_user(carol, carol_pw)
        sighup(server)
        with SMTPClient(server.submission) as c:
            c.submit_ready(carol, carol_pw, verifying_ctx(server))
            assert c.cmd(f"MAIL FROM:<{carol}>").code == 250
            assert c.cmd("RCPT TO:<bob@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            c.send("Subject: carol\r\n\r\nfrom carol\r\n.\r\n")
            qid_new = c.reply().last.split()[-1]
        # the session opened before the reload still sends
        assert old.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert old.cmd("RCPT TO:<bob@example.test>").code == 250
        assert old.cmd("DATA").code == 354
        old.send("Subject: old\r\n\r\nfrom the old session\r\n.\r\n")
        r = old.reply()
        assert r.last.startswith("250 2.0.0 OK: queued as "), r
        qid_old = r.last.split()[-1]
        assert old.cmd("QUIT").code == 221
    assert queue_show(server, qid_new)["auth_user"] == carol
    assert queue_show(server, qid_old)["auth_user"] == USER
    # and the old password of alice still works, as before
    with SMTPClient(server.submission) as c:
        c.submit_ready(USER, PASSWORD, verifying_ctx(server))


def peer_der(server, port, implicit=True):
    ctx = verifying_ctx(server)
    ctx.check_hostname = True
    with SMTPClient(port, implicit_tls=implicit, ctx=ctx) as c:
        if not implicit:
            c.ehlo()
            c.starttls(ctx)
        return c.sock.getpeercert(binary_form=True)


def der_of(pem_path):
    pem = pem_path.read_text()
    first = pem[:pem.index("-----END CERTIFICATE-----") + 25]
    return ssl.PEM_cert_to_DER_cert(first)


def test_sighup_replaces_certificate_keeps_sessions(make_server, pki):
    server = make_server()
    chain, key = use_own_certificate(server)
    server.start()
    assert peer_der(server, server.smtps) == der_of(chain)
    old_der = der_of(chain)
    with SMTPClient(server.smtps, implicit_tls=True, ctx=verifying_ctx(server)) as old:
        old.ehlo()
        old.login(USER, PASSWORD)
        new_chain, new_key = pki.leaf(f"reload{uuid.uuid4().hex[:8]}",
                                      ["mail.example.test", "localhost"], ["127.0.0.1"])
        # replace both files atomically
        for src, dst in ((new_chain, chain), (new_key, key)):
            tmp = dst.with_suffix(".tmp")
            tmp.write_bytes(src.read_bytes())
            tmp.rename(dst)
        sighup(server)
        new_der = der_of(chain)
        assert new_der != old_der
        assert peer_der(server, server.smtps) == new_der
        assert peer_der(server, server.submission, implicit=False) == new_der
        # the session from before the reload keeps its TLS and can still send
        assert old.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert old.cmd("RCPT TO:<bob@example.test>").code == 250
        assert old.cmd("DATA").code == 354
        old.send("Subject: old\r\n\r\nsent across a reload\r\n.\r\n")
        r = old.reply()
        assert r.last.startswith("250 2.0.0 OK: queued as "), r
        assert old.sock.getpeercert(binary_form=True) == old_der


def test_sighup_bad_config_keeps_running(server):
    good = server.conf.read_text()
    server.conf.write_text(good + "\n[bogus]\n")
    before = len(server.events("reload"))
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(server.events("reload")) > before, what="reload event")
    r = server.events("reload")[-1]
    assert r["result"] == "fail" and "bogus" in r["error"], r
    server.conf.write_text(good)
    with SMTPClient(server.submission) as c:
        c.submit_ready(USER, PASSWORD, verifying_ctx(server))


# --- Received: -------------------------------------------------------------------------

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_received_header_esmtpsa_tls(server, version):
    ctx = verifying_context(server)
    ctx.minimum_version = ctx.maximum_version = version
    with smtplib.SMTP("127.0.0.1", server.submission, local_hostname="client.example.test",
                      timeout=30) as s:
        s.starttls(context=ctx)
        cipher = s.sock.cipher()[0]
        vname = s.sock.version()
        s.login(USER, PASSWORD)
        s.mail(USER)
        s.rcpt("bob@example.test")
        code, resp = s.data(make_message(USER, "bob@example.test", "rcvd").encode())
        assert code == 250
    qid = QUEUED_RE.search(resp.decode()).group(1)
    rcvd = received_header(queue_show(server, qid))
    assert rcvd.startswith("from client.example.test ([127.0.0.1])"), rcvd
    assert f"by mail.example.test (smtpgate) with ESMTPSA id {qid}" in rcvd, rcvd
    assert f"(version={vname} cipher={cipher});" in rcvd, rcvd
    assert vname == ("TLSv1.2" if version == ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
    # a date follows the semicolon
    assert re.search(r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000$", rcvd), rcvd


def test_received_header_implicit_and_plain(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.smtps, context=verifying_context(server),
                          local_hostname="implicit.example.test", timeout=30) as s:
        s.login(USER, PASSWORD)
        s.mail(USER)
        s.rcpt("bob@example.test")
        _, resp = s.data(b"Subject: a\r\n\r\na\r\n")
    rcvd = received_header(queue_show(server, QUEUED_RE.search(resp.decode()).group(1)))
    assert "from implicit.example.test ([127.0.0.1])" in rcvd and " with ESMTPSA id " in rcvd
    with smtplib.SMTP("127.0.0.1", server.mx, local_hostname="mx.client.test", timeout=30) as s:
        s.ehlo()
        assert s.mail("someone@foreign.test") == (250, b"2.1.0 Sender OK")
        assert s.rcpt("bob@example.test") == (250, b"2.1.5 Recipient OK")
        _, resp = s.data(b"Subject: b\r\n\r\nb\r\n")
    rcvd = received_header(queue_show(server, QUEUED_RE.search(resp.decode()).group(1)))
    assert " with ESMTP id " in rcvd and "version=" not in rcvd, rcvd


def test_second_sigterm_during_shutdown(make_server):
    """A repeated SIGTERM while sessions drain does not kill the process."""
    server = make_server(limits="shutdown_grace = 2s").start()
    with authed_session(server) as c:
        server.proc.send_signal(signal.SIGTERM)
        server.wait_event("shutdown")
        server.proc.send_signal(signal.SIGTERM)
        server.proc.send_signal(signal.SIGINT)
        assert c.reply(timeout=20).last == "421 4.3.2 Service shutting down, closing connection"
    rc = server.proc.wait(timeout=20)
    assert rc == 0, server.stderr_text()
    server.stop()

"""Delivery uses the next hop's ESMTP extensions when offered, and only then:
SIZE, 8BITMIME, SMTPUTF8, CHUNKING (BDAT) and
PIPELINING, against a scripted STARTTLS peer (zoo.ScriptServer) that
records every command line and the exact message bytes it receives, so the
bytes can be compared with the spool. And AUTH with the configured
mechanism (SCRAM-SHA-256-PLUS, SCRAM-SHA-256, LOGIN) to a smarthost that
is a second smtpgate.
"""
import smtplib
import ssl
import threading

import pytest
import zoo
from conftest import PASSWORD, USER, spool_body, wait_for
from test_delivery import SENDER, deliveries, relay_conf

UTF8_RCPT = "bjørn@example.net"


class Peer:
    """A STARTTLS smarthost offering `caps`; records lines and messages."""

    def __init__(self, pki, caps):
        self.caps = list(caps)
        self.gate = threading.Event()  # greets once set: the spool can be read first
        self.messages = []  # (mail line, [rcpt lines], how: "DATA"/"BDAT", bytes)
        self.tls = zoo.tls_server_context(pki.dir / "mail-chain.pem", pki.dir / "mail.key")
        self.server = zoo.ScriptServer(self.dialogue)
        self.port = self.server.port

    @staticmethod
    def _read_exact(conn, n):
        while len(conn.buf) < n:
            d = conn.sock.recv(65536)
            if not d:
                raise EOFError
            conn.buf += d
        data, conn.buf = conn.buf[:n], conn.buf[n:]
        return data

    def dialogue(self, conn, srv):
        self.gate.wait(20)
        conn.send("220 peer.test ESMTP\r\n")
        tls = False
        mail, rcpts, chunks = None, [], []
        while True:
            line = conn.readline()
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                lines = ["peer.test"] + self.caps + ([] if tls else ["STARTTLS"])
                conn.send("".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n")
            elif verb == "STARTTLS":
                conn.send("220 2.0.0 go ahead\r\n")
                conn.starttls(self.tls)
                tls = True
            elif verb == "MAIL":
                mail, rcpts, chunks = line, [], []
                conn.send("250 2.1.0 OK\r\n")
            elif verb == "RCPT":
                rcpts.append(line)
                conn.send("250 2.1.5 OK\r\n")
            elif verb == "DATA":
                conn.send("354 go\r\n")
                body = b""
                while True:
                    raw = conn.readline().encode("latin-1")
                    if raw == b".":
                        break
                    body += (raw[1:] if raw.startswith(b".") else raw) + b"\r\n"
                self.messages.append((mail, rcpts, "DATA", body))
                conn.send("250 2.0.0 queued\r\n")
            elif verb == "BDAT":
                parts = line.split()
                chunks.append(self._read_exact(conn, int(parts[1])))
                if len(parts) > 2 and parts[2].upper() == "LAST":
                    self.messages.append((mail, rcpts, "BDAT", b"".join(chunks)))
                    conn.send("250 2.0.0 queued\r\n")
                else:
                    conn.send("250 2.0.0 chunk\r\n")
            elif verb == "RSET":
                conn.send("250 2.0.0 reset\r\n")
            elif verb == "QUIT":
                conn.send("221 2.0.0 bye\r\n")
                return
            else:
                conn.send("502 5.5.1 not implemented\r\n")

    def stop(self):
        self.server.stop()


def submit_utf8(server, rcpt, msg):
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=15) as c:
        c.starttls(context=ctx)
        c.login(USER, PASSWORD)
        c.sendmail(SENDER, [rcpt], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])


def utf8_message(marker):
    return (f"From: <{SENDER}>\r\nTo: <{UTF8_RCPT}>\r\nSubject: Grüße {marker}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n"
            f"Smørrebrød {marker}\r\n.a leading dot\r\n").encode()


def ascii_message(marker):
    return (f"From: <{SENDER}>\r\nTo: <bob@example.net>\r\nSubject: {marker}\r\n\r\n"
            f"hello {marker}\r\n.a leading dot\r\n..two dots\r\nend\r\n").encode()


def test_extensions_used_when_offered(make_server, pki):
    peer = Peer(pki, ["PIPELINING", "SIZE 10000000", "8BITMIME", "SMTPUTF8", "CHUNKING"])
    try:
        s = make_server(extra=relay_conf(peer.port, pki)).start()
        submit_utf8(s, UTF8_RCPT, utf8_message("ext1"))
        qid = s.wait_event("accepted")["queue_id"]
        body = spool_body(s, qid)
        peer.gate.set()
        wait_for(lambda: peer.messages, timeout=20, what="delivery to the peer")
        mail, rcpts, how, data = peer.messages[0]
        assert mail == (f"MAIL FROM:<{SENDER}> SIZE={len(body)} BODY=8BITMIME SMTPUTF8")
        assert rcpts == [f"RCPT TO:<{UTF8_RCPT}>".encode().decode("latin-1")]
        assert how == "BDAT"  # CHUNKING: no dot-stuffing at all
        assert data == body and data.endswith(utf8_message("ext1"))
        assert deliveries(s, queue_id=qid)[0]["result"] == "sent"
    finally:
        peer.stop()


def test_nothing_used_when_not_offered(make_server, pki):
    peer = Peer(pki, ["ENHANCEDSTATUSCODES"])
    try:
        s = make_server(extra=relay_conf(peer.port, pki)).start()
        from test_delivery import submit
        submit(s, ["bob@example.net"], ascii_message("plain1"))
        qid = s.wait_event("accepted")["queue_id"]
        body = spool_body(s, qid)
        peer.gate.set()
        wait_for(lambda: peer.messages, timeout=20, what="delivery to the peer")
        mail, rcpts, how, data = peer.messages[0]
        assert mail == f"MAIL FROM:<{SENDER}>"  # no SIZE=, no BODY=
        assert how == "DATA"
        assert data == body  # dot-stuffed on the wire, the same bytes after un-stuffing
        assert b"\r\n.a leading dot\r\n..two dots\r\n" in data
    finally:
        peer.stop()


def test_smtputf8_message_to_a_peer_without_it_fails_with_dsn(make_server, pki):
    # RFC 6531 3.4: no downgrade of an address; the sender learns why
    peer = Peer(pki, ["PIPELINING", "8BITMIME"])
    try:
        s = make_server(extra=relay_conf(peer.port, pki)).start()
        submit_utf8(s, UTF8_RCPT, utf8_message("utf8fail"))
        qid = s.wait_event("accepted")["queue_id"]
        peer.gate.set()
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
        assert ev["result"] == "bounced" and ev["enhanced"] == "5.6.7"
        assert "SMTPUTF8" in ev["reason"]
        dsn = s.wait_event("dsn", lambda r: r["queue_id"] == qid)
        assert dsn["to"] == SENDER
        # the DSN quotes the original's UTF-8 header section, so it needs
        # SMTPUTF8 too: at this peer it fails the same way and, having the
        # null sender, is dropped (never bounced: no loop)
        ev2 = s.wait_event("delivery", lambda r: r["queue_id"] == dsn["dsn_id"], timeout=20)
        assert ev2["result"] == "failed" and ev2["enhanced"] == "5.6.7"
        wait_for(lambda: not s.queued(), what="the queue to empty")
        assert len(s.events("dsn")) == 1 and peer.messages == []
    finally:
        peer.stop()


def test_message_over_the_peers_size_limit_fails_without_sending(make_server, pki):
    peer = Peer(pki, ["PIPELINING", "SIZE 10000"])
    try:
        s = make_server(extra=relay_conf(peer.port, pki)).start()
        from test_delivery import submit
        big = ascii_message("big") + (b"x" * 998 + b"\r\n") * 20
        submit(s, ["bob@example.net"], big)
        qid = s.wait_event("accepted")["queue_id"]
        peer.gate.set()
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
        assert ev["result"] == "bounced" and ev["enhanced"] == "5.3.4"
        assert "SIZE 10000" in ev["reason"] and ev["finding"] == "message-too-large"
        # the DSN (with only the headers of the original) fits and is delivered
        wait_for(lambda: peer.messages, timeout=20, what="the DSN")
        assert all(m[0].startswith("MAIL FROM:<>") for m in peer.messages)
        assert not any(b"x" * 998 in m[3] for m in peer.messages)
    finally:
        peer.stop()


# --- AUTH to a smarthost that is smtpgate itself -----------------------------------------

@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "LOGIN"])
def test_auth_mechanism_to_an_smtpgate_smarthost(make_server, pki, tmp_path, mech):
    # the smarthost is a second smtpgate offering SCRAM (-PLUS: channel
    # binding to the TLS session) and LOGIN; the relay must use exactly the
    # configured mechanism, and the smarthost gets the same bytes
    hop = make_server(mechanisms="SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN").start()
    cred = tmp_path / "relay.secret"
    cred.write_text(f"{USER} {PASSWORD}\n")
    cred.chmod(0o600)
    s = make_server(extra=relay_conf(hop.submission, pki,
                                     f"auth = {mech}\ncredentials = {cred}")).start()
    from test_delivery import submit
    submit(s, ["bob@example.net"], ascii_message(f"hop-{mech}"))
    qid = s.wait_event("accepted")["queue_id"]
    ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=20)
    assert ev["result"] == "sent", ev
    auth = hop.wait_event("auth", lambda r: r["result"] == "ok")
    assert auth["mechanism"] == mech and auth["user"] == USER
    acc = hop.wait_event("accepted")
    assert acc["user"] == USER and acc["from"] == SENDER
    assert spool_body(hop, acc["queue_id"]).endswith(ascii_message(f"hop-{mech}"))
    assert PASSWORD not in s.log.read_text()

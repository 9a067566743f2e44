"""Delivery sessions: PIPELINING used when the next hop
offers it, never when it does not, and one session carrying a backlog of
messages for the same destination (connection reuse), against an aiosmtpd
sink over STARTTLS that records, per connection, every chunk its SMTP layer
received (after TLS) and how many MAIL commands it answered.

A backlog is made by submitting while the sink answers DATA slowly, with
concurrency = 1: one worker, one session at a time.
"""
import asyncio
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from conftest import wait_for
from test_delivery import SENDER, Sink, deliveries, message, relay_conf, submit


class _RecordingSMTP(SMTP):
    def connection_made(self, transport):
        # called again after STARTTLS: the connection is the same
        if getattr(self, "_rec", None) is None:
            self._rec = {"chunks": [], "open": True, "mails": 0, "replies": []}
            self.event_handler.all_conns.append(self._rec)
        super().connection_made(transport)

    def data_received(self, data):
        self._rec["chunks"].append(data)
        super().data_received(data)

    def connection_lost(self, exc):
        self._rec["open"] = False
        super().connection_lost(exc)


class _RecordingController(Controller):
    def factory(self):
        return _RecordingSMTP(self.handler, **self.SMTP_kwargs)


class SessionSink(Sink):
    """A Sink that offers PIPELINING (unless told not to) and may refuse MAIL:
    mail_script(conn_index, nth_mail_on_that_conn) returns a reply or None."""

    controller_class = _RecordingController

    def __init__(self, pki, pipelining=True, mail_script=None, **kw):
        self.all_conns = []  # the Controller's own start-up check is one
        self.pipelining = pipelining
        self.mail_script = mail_script
        super().__init__(pki, **kw)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        rec = server._rec
        rec["mails"] += 1
        reply = None
        if self.mail_script is not None:
            reply = self.mail_script(self.conns.index(rec), rec["mails"])
        rec["replies"].append(reply or "250")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    @property
    def conns(self):
        """The connections that said anything."""
        return [c for c in self.all_conns if c["chunks"]]

    def data(self, conn):
        return b"".join(conn["chunks"])


def backlog(server, n, marker, rcpts=("bob@example.net",)):
    """n messages submitted in one session, as fast as the server takes them."""
    import smtplib
    import ssl

    from conftest import PASSWORD, USER
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=15) as c:
        c.starttls(context=ctx)
        c.login(USER, PASSWORD)
        for i in range(n):
            c.sendmail(SENDER, list(rcpts), message(f"{marker}{i}", to=rcpts[0]))


def start(make_server, pki, sink):
    return make_server(extra=relay_conf(sink.port, pki, "concurrency = 1")).start()


def test_envelope_pipelined_and_backlog_over_one_session(make_server, pki):
    sink = SessionSink(pki, data_delay=0.3)
    try:
        s = start(make_server, pki, sink)
        rcpts = ("bob@example.net", "carol@example.net", "dave@example.net")
        backlog(s, 5, "pipe", rcpts)
        wait_for(lambda: len(sink.messages) == 5, timeout=30, what="five deliveries")
        for _, mail_from, got, _ in sink.messages:
            assert mail_from == SENDER and got == list(rcpts)
        # every envelope came in one chunk: MAIL and its RCPTs in one write
        envelopes = [c for conn in sink.conns for c in conn["chunks"]
                     if c.startswith(b"MAIL FROM:")]
        assert len(envelopes) == 5
        for chunk in envelopes:
            assert chunk.count(b"\r\n") == 4, chunk
            for r in rcpts:
                assert f"RCPT TO:<{r}>\r\n".encode() in chunk
        # the backlog shared sessions: fewer connections than messages
        # (the first message may have had one to itself before the rest came)
        assert len(sink.conns) <= 2, len(sink.conns)
        assert max(conn["mails"] for conn in sink.conns) >= 4
        # no session is kept once the queue is empty: QUIT, then closed
        wait_for(lambda: not s.queued(), what="the queue to empty")
        wait_for(lambda: all(not conn["open"] for conn in sink.conns), timeout=10,
                 what="sessions to be closed")
        for conn in sink.conns:
            assert sink.data(conn).endswith(b"QUIT\r\n")
        evs = deliveries(s, result="sent")
        assert len(evs) == 15 and all(e["relay"] == f"127.0.0.1:{sink.port}" for e in evs)
    finally:
        sink.stop()


def test_no_pipelining_when_not_offered(make_server, pki):
    sink = SessionSink(pki, pipelining=False)
    try:
        s = start(make_server, pki, sink)
        backlog(s, 1, "nopipe", ("bob@example.net", "carol@example.net"))
        wait_for(lambda: sink.messages, timeout=20, what="the delivery")
        conn = sink.conns[0]
        # RFC 2920: without PIPELINING each command waits for its reply
        mail = [c for c in conn["chunks"] if c.startswith(b"MAIL FROM:")]
        assert len(mail) == 1 and mail[0].count(b"\r\n") == 1, mail
        assert b"RCPT TO:<bob@example.net>\r\n" in conn["chunks"]
        assert b"RCPT TO:<carol@example.net>\r\n" in conn["chunks"]
        assert sink.messages[0][2] == ["bob@example.net", "carol@example.net"]
    finally:
        sink.stop()


def test_refused_pipelined_mail_keeps_the_session_in_step(make_server, pki):
    # the first MAIL of the first connection gets 451 (its pipelined RCPTs
    # then get aiosmtpd's 503): that message is deferred, the session is
    # RSET and carries the next messages, and the first is sent on retry
    sink = SessionSink(pki, data_delay=0.3,
                       mail_script=lambda conn, nth: "451 4.3.0 busy, later"
                       if (conn, nth) == (0, 1) else None)
    try:
        s = start(make_server, pki, sink)
        backlog(s, 4, "step", ("bob@example.net", "carol@example.net"))
        wait_for(lambda: len(sink.messages) == 4, timeout=30, what="four deliveries")
        first = sink.conns[0]
        assert first["replies"][0].startswith("451")
        text = sink.data(first)
        assert b"RSET\r\n" in text
        # the same session went on after the refusal and the RSET
        assert first["mails"] >= 2 and "250" in first["replies"][1:]
        # the sink has the last message before the relay has read its 250 and
        # logged it: wait for the log
        wait_for(lambda: len([e for e in deliveries(s) if e["result"] == "sent"]) >= 8,
                 what="eight sent events")
        evs = deliveries(s)
        deferred = [e for e in evs if e["result"] == "deferred"]
        assert len(deferred) == 2  # one message, two recipients
        assert all(e["code"] == 451 for e in deferred)
        assert len([e for e in evs if e["result"] == "sent"]) == 8
        wait_for(lambda: not s.queued(), what="the queue to empty")
    finally:
        sink.stop()


def test_session_ended_by_the_peer_is_replaced_without_a_retry(make_server, pki):
    # a peer that takes one message per connection and answers the next
    # MAIL with 421: the message goes out over a new session at once
    sink = SessionSink(pki, data_delay=0.3,
                       mail_script=lambda conn, nth: "421 4.7.0 one message per connection"
                       if nth > 1 else None)
    try:
        s = start(make_server, pki, sink)
        backlog(s, 4, "once")
        wait_for(lambda: len(sink.messages) == 4, timeout=30, what="four deliveries")
        assert any(conn["mails"] == 2 for conn in sink.conns)  # reuse was tried
        wait_for(lambda: len(deliveries(s)) >= 4, what="four delivery events")
        evs = deliveries(s)
        assert [e["result"] for e in evs] == ["sent"] * 4  # never deferred
        assert len(sink.conns) == 4
    finally:
        sink.stop()

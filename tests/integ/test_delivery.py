"""Delivery (issue 5): the scheduler, smarthost/LMTP routes, retries, DSNs
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
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import (PASSWORD, SMTPGATE, USER, Server, free_port, spool_body, wait_for,
                      wait_port)

SENDER = USER  # alice@example.test (sender binding: the login's own address)


class Sink:
    """An aiosmtpd server recording what it accepts. `script` is a list of
    (code, text) answered to DATA in order (then 250); `rcpt_script` maps a
    recipient to a fixed RCPT answer."""

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
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
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

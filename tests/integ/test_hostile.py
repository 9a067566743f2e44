"""Hostile clients: pipelined floods (read, never read, or cut off), lines of
hundreds of KiB, oversized AUTH initial responses for every mechanism, BDAT
sizes no one could send, and many clients that flood and never read.

Throughout each test a normal client (smtplib: STARTTLS, AUTH PLAIN, one
message) must still be served, the server must stay alive, and its memory
(VmRSS and VmHWM of /proc/PID/status) must stay bounded; the figures are
printed (pytest -s) and are in every assertion message. A client that never
reads is timed out by the server ([limits] timeout_command) and its session
freed (its `disconnect` event is logged).

Every loop here is bounded by a count or a deadline.
"""
import base64
import json
import os
import select
import smtplib
import ssl
import threading
import time

import pytest

from conftest import PASSWORD, USER, make_message, proc_status_kib, wait_for
from smtpclient import Closed, SMTPClient, b64

FLOOD = 200 * 1024  # bytes of pipelined commands per flood
BIG_LINE = 300 * 1024  # bytes in one line
# growth of VmRSS / VmHWM allowed over a test (ASan builds use much more
# memory per allocation than plain ones)
MEM_GROWTH_MAX_KIB = 64 * 1024
ISS = "https://issuer.example.test"
MECHS = "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN XOAUTH2 OAUTHBEARER"
# the last line of every EHLO reply
EHLO_LAST = "250 CHUNKING"


# --- server, memory, the normal client -------------------------------------------

def mem_kib(server):
    """VmRSS and VmHWM summed over the server's processes (the parent, and
    the children that parse the attacker's bytes), in KiB."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for pid in server.pids():
        for k, v in proc_status_kib(pid).items():
            out[k] += v
    return out


def jwks_for_tests(d):
    """A JWKS file with one Ed25519 key (tokens are refused anyway: the
    tests send oversized ones)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    (d / "jwks.json").write_text(json.dumps(
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x}]}))


@pytest.fixture
def hostile(make_server, monkeypatch):
    """make_server with every mechanism, [oauth], room for floods
    (commands) and a small ASan quarantine (as test_abuse has), so that
    VmRSS measures what the server holds rather than freed memory ASan
    keeps poisoned."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (opts + ":" if opts else "") + "quarantine_size_mb=4")

    def make(limits="", **kw):
        kw.setdefault("mechanisms", MECHS)
        s = make_server(limits="commands = 1000000\n" + limits,
                        extra=f"[oauth]\njwks = jwks.json\nissuer = {ISS}\naudience = smtpgate\n",
                        **kw)
        jwks_for_tests(s.dir)
        return s.start()

    return make


def normal_client(server, marker):
    """smtplib: STARTTLS (verifying the chain), AUTH PLAIN, one message."""
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=30) as c:
        c.ehlo("normal.example.test")
        c.starttls(context=ctx)
        c.ehlo("normal.example.test")
        c.user, c.password = USER, PASSWORD
        code, resp = c.auth("PLAIN", c.auth_plain)
        assert code == 235, (code, resp)
        refused = c.sendmail(USER, ["bob@example.test"],
                             make_message(USER, "bob@example.test", marker))
        assert refused == {}, refused


class Watch:
    """The server under attack: alive, serving a normal client, memory
    bounded relative to when the watch started."""

    def __init__(self, server, label):
        self.server = server
        self.label = label
        # the process that reads the network: a crash of it would be
        # hidden by the parent's restart, so its pid must not change
        self.smtp = server.child_pid("smtpgate-smtp")
        # the first session pays for what is made once (TLS, worker
        # threads, the passwd snapshot): not counted as growth
        normal_client(server, f"{label}-warm-up")
        self.before = mem_kib(server)
        self.normal = 0

    def figures(self):
        now = mem_kib(self.server)
        return (f"[{self.label}] VmRSS {self.before['VmRSS']} -> {now['VmRSS']} KiB "
                f"(+{now['VmRSS'] - self.before['VmRSS']}), VmHWM {self.before['VmHWM']} -> "
                f"{now['VmHWM']} KiB (+{now['VmHWM'] - self.before['VmHWM']})"), now

    def alive(self):
        assert self.server.proc.poll() is None, (
            f"[{self.label}] the server died (exit {self.server.proc.returncode}):\n"
            + self.server.stderr_text()[-6000:])
        assert self.server.children().get("smtpgate-smtp") == [self.smtp], (
            f"[{self.label}] the smtp process died: {self.server.events('child_exit')}\n"
            + self.server.stderr_text()[-6000:])

    def check(self, what=""):
        """Alive, a normal client served, memory growth under the bound."""
        self.alive()
        self.normal += 1
        normal_client(self.server, f"{self.label}-{self.normal}")
        self.alive()
        text, now = self.figures()
        print(f"{text} {what}")
        assert now["VmRSS"] - self.before["VmRSS"] < MEM_GROWTH_MAX_KIB, text
        assert now["VmHWM"] - self.before["VmHWM"] < MEM_GROWTH_MAX_KIB, text


class Background:
    """Runs the normal client again and again on a thread while a test
    attacks; stop() says how many runs succeeded and re-raises a failure."""

    def __init__(self, watch):
        self.watch = watch
        self.done = threading.Event()
        self.ok = 0
        self.error = None
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        for i in range(10000):
            if self.done.is_set() or self.server_gone():
                return
            try:
                normal_client(self.watch.server, f"{self.watch.label}-bg{i}")
                self.ok += 1
            except Exception as e:  # reported by stop()
                self.error = e
                return
            self.done.wait(0.2)

    def server_gone(self):
        return self.watch.server.proc is None or self.watch.server.proc.poll() is not None

    def stop(self):
        if self.stopped:
            return self.ok
        self.stopped = True
        self.done.set()
        self.thread.join(60)
        self.watch.alive()
        if self.error is not None:
            raise AssertionError(f"[{self.watch.label}] the normal client failed during "
                                 f"the attack after {self.ok} runs: {self.error!r}")
        return self.ok


def sessions_open(server):
    """connect events minus disconnect events: sessions not yet freed."""
    return len(server.events("connect")) - len(server.events("disconnect"))


# --- hostile connections --------------------------------------------------------

ALL_TRANSPORTS = ["mx", "submission-plain", "submission-tls", "smtps"]


def connect(server, transport, authenticate=False):
    """A blocking SMTPClient after EHLO on the given transport:
    mx (tls = none), submission-plain (STARTTLS listener, before STARTTLS),
    submission-tls (after STARTTLS), smtps (implicit TLS). With
    authenticate, AUTH PLAIN too (TLS transports only)."""
    port = {"mx": server.mx, "submission-plain": server.submission,
            "submission-tls": server.submission, "smtps": server.smtps}[transport]
    c = SMTPClient(port, implicit_tls=transport == "smtps", timeout=30)
    c.ehlo()
    if transport == "submission-tls":
        c.starttls()
        c.ehlo()
    if authenticate:
        c.login(USER, PASSWORD)
    return c


class Replies:
    """Incremental reply parser: counts whole replies and checks each last
    line against expect(i) (a string, or a tuple of allowed strings), and
    that every line of a reply has the code of its last line."""

    def __init__(self, expect, count):
        self.expect = expect
        self.count = count
        self.n = 0
        self.pending = b""
        self.lines = []
        self.bytes = 0

    def feed(self, data):
        self.bytes += len(data)
        self.pending += data
        *whole, self.pending = self.pending.split(b"\r\n")
        for raw in whole:
            line = raw.decode("utf-8", "replace")
            assert len(line) >= 4 and line[:3].isdigit() and line[3] in " -", (
                f"malformed reply line {line[:200]!r} after {self.n} replies")
            self.lines.append(line)
            if line[3] == " ":
                self.finish()
        assert len(self.pending) < 1 << 20, "a reply line of a MiB"
        return self.n >= self.count

    def finish(self):
        want = self.expect(self.n)
        want = (want,) if isinstance(want, str) else want
        last = self.lines[-1]
        assert last in want, f"reply {self.n}: {last!r}, expected {want!r}"
        assert all(line[:3] == last[:3] for line in self.lines), self.lines
        self.lines = []
        self.n += 1


def raw_sock(c):
    """The client's socket, non-blocking, with nothing left buffered."""
    assert c.buf == b"", c.buf
    c.sock.setblocking(False)
    return c.sock


WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def pump(sock, data, replies=None, deadline=60.0, stall=3.0):
    """Sends data without waiting for replies: reads only when the socket
    will not take more (the server stopped reading) or everything is sent.
    With replies None, never reads: returns when all is sent or nothing has
    moved for `stall` seconds. Returns bytes sent; raises Closed on EOF."""
    end = time.monotonic() + deadline
    view = memoryview(data)
    sent, stalled_since = 0, None
    while time.monotonic() < end:
        wrote = False
        if sent < len(data):
            try:
                n = sock.send(view[sent:sent + 65536])
                sent += n
                wrote = n > 0
            except WOULD_BLOCK:
                pass
            except (BrokenPipeError, ConnectionResetError) as e:
                raise Closed(f"while sending: {e!r}") from None
        if replies is None:
            if sent == len(data):
                return sent
            if wrote:
                stalled_since = None
            elif stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > stall:
                return sent
            if not wrote:
                select.select([], [sock], [], 0.2)
            continue
        if wrote and sent < len(data):
            continue
        got = False
        try:
            chunk = sock.recv(1 << 18)
            if not chunk:
                raise Closed(f"EOF after {replies.n} replies, {sent} of {len(data)} bytes sent")
            got = True
            if replies.feed(chunk):
                return sent
        except WOULD_BLOCK:
            pass
        except ConnectionResetError as e:
            raise Closed(f"reset after {replies.n} replies: {e!r}") from None
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        if not got and not pending:
            select.select([sock], [sock] if sent < len(data) else [], [], 0.2)
    raise TimeoutError(f"after {deadline} s: {sent} of {len(data)} bytes sent"
                       + (f", {replies.n} of {replies.count} replies" if replies else ""))


def expect_server_close(sock, timeout):
    """Reads (and discards) until the server closes: EOF or a reset.
    Returns the seconds it took; fails if the server keeps it open."""
    sock.setblocking(False)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if not sock.recv(1 << 18):
                return time.monotonic() - t0
        except WOULD_BLOCK:
            select.select([sock], [], [], 0.2)
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.monotonic() - t0
    raise AssertionError(f"the server kept a non-reading client open for {timeout} s")


# Floods: (setup lines, the repeated command, expected last line of its i-th reply)
def flood_plan(transport, what):
    rcpt_setup = {"mx": ["MAIL FROM:<someone@other.test>"],
                  "submission-tls": [f"MAIL FROM:<{USER}>"],
                  "smtps": [f"MAIL FROM:<{USER}>"]}
    if what == "EHLO":
        return [], "EHLO a\r\n", lambda i: EHLO_LAST
    if what == "NOOP":
        return [], "NOOP\r\n", lambda i: "250 2.0.0 OK"
    if what == "RSET":
        return [], "RSET\r\n", lambda i: "250 2.0.0 Reset state"
    if what == "RCPT":
        if transport not in rcpt_setup:
            return None  # MAIL needs STARTTLS there: every RCPT would be an error
        return (rcpt_setup[transport], "RCPT TO:<bob@example.test>\r\n",
                lambda i: "250 2.1.5 Recipient OK" if i < 100 else "452 4.5.3 Too many recipients")
    # all four kinds in turn: the replies must come in order
    cycle = ["EHLO a\r\n", "NOOP\r\n", "RSET\r\n", "HELP\r\n"]
    lasts = [EHLO_LAST, "250 2.0.0 OK", "250 2.0.0 Reset state",
             "214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321"]
    return [], "".join(cycle), lambda i: lasts[i % 4]


def flood_bytes(command):
    """About FLOOD bytes of command repeated; and how many replies they get."""
    n = max(1, FLOOD // len(command))
    return command.encode() * n, n * command.count("\r\n")


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_pipelined_floods_all_replies_in_order(hostile, transport):
    """200 KiB of pipelined EHLO, NOOP, RSET, RCPT and a mix of them, sent
    without waiting: every reply arrives, whole and in order."""
    s = hostile()
    w = Watch(s, f"flood-read-{transport}")
    bg = Background(w)
    try:
        for what in ("EHLO", "NOOP", "RSET", "RCPT", "MIX"):
            plan = flood_plan(transport, what)
            if plan is None:
                continue
            setup, command, expect = plan
            c = connect(s, transport, authenticate=bool(setup) and transport != "mx")
            try:
                for line in setup:
                    assert c.cmd(line).code == 250
                data, count = flood_bytes(command)
                replies = Replies(expect, count)
                t0 = time.monotonic()
                pump(raw_sock(c), data, replies, deadline=120)
                print(f"[{w.label}] {what}: {count} replies, {replies.bytes} bytes "
                      f"in {time.monotonic() - t0:.1f} s")
                c.sock.setblocking(True)
                assert c.cmd("QUIT").code == 221
            finally:
                c.close()
            w.check(f"after the {what} flood")
    finally:
        runs = bg.stop()
    assert runs > 0, "the normal client never ran during the floods"


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_pipelined_floods_never_read_then_close(hostile, transport):
    """The same floods, but the client reads nothing and hangs up: the
    server survives and frees every session."""
    s = hostile()
    w = Watch(s, f"flood-close-{transport}")
    bg = Background(w)
    try:
        for what in ("EHLO", "NOOP", "RCPT", "MIX"):
            plan = flood_plan(transport, what)
            if plan is None:
                continue
            setup, command, _ = plan
            c = connect(s, transport, authenticate=bool(setup) and transport != "mx")
            for line in setup:
                assert c.cmd(line).code == 250
            data, _ = flood_bytes(command)
            sent = pump(raw_sock(c), data, None, deadline=30)
            c.close()
            print(f"[{w.label}] {what}: sent {sent} of {len(data)} bytes, closed")
            w.check(f"after the {what} flood and close")
    finally:
        bg.stop()
    wait_for(lambda: sessions_open(s) == 0, timeout=30, what="every session freed")


@pytest.mark.parametrize("transport", ["mx", "submission-tls", "smtps"])
def test_flood_never_read_is_timed_out(hostile, transport):
    """A client that floods and then neither reads nor closes: the server
    stops reading it, times it out (timeout_command = 3s) and frees the
    session while the client still has not read a byte."""
    s = hostile(limits="timeout_command = 3s\n")
    w = Watch(s, f"never-read-{transport}")
    c = connect(s, transport)
    data, _ = flood_bytes("EHLO a\r\n")
    sent = pump(raw_sock(c), data, None, deadline=30)
    print(f"[{w.label}] sent {sent} of {len(data)} bytes without reading")
    w.check("while the flooder waits")
    t0 = time.monotonic()
    wait_for(lambda: sessions_open(s) == 0, timeout=30, what="the flooder's session freed")
    print(f"[{w.label}] its session was freed {time.monotonic() - t0:.1f} s after the check")
    expect_server_close(c.sock, timeout=30)
    c.close()
    w.check("after the timeout")


def test_many_clients_flood_and_never_read(hostile):
    """50 clients flood (plain, before and after STARTTLS, implicit TLS) and
    never read: the normal client is served meanwhile, all 50 are timed out
    and freed, memory stays bounded."""
    s = hostile(limits="timeout_command = 5s\n")
    w = Watch(s, "many-never-read")
    bg = Background(w)
    held = []
    try:
        transports = ["mx", "submission-plain", "submission-tls", "smtps"]
        data, _ = flood_bytes("EHLO a\r\n")
        total = 0
        for i in range(50):
            c = connect(s, transports[i % 4])
            held.append(c)
            total += pump(raw_sock(c), data, None, deadline=10, stall=0.3)
        print(f"[{w.label}] 50 clients sent {total} bytes and read nothing")
        w.check("with 50 flooders holding on")
        bg.stop()
        wait_for(lambda: sessions_open(s) == 0, timeout=60, what="every flooder timed out")
        for c in held:
            expect_server_close(c.sock, timeout=30)
    finally:
        for c in held:
            c.close()
        bg.stop()
    w.check("after all 50 were timed out")


# --- long lines ----------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["mx", "smtps"])
def test_line_of_hundreds_of_kib(hostile, transport):
    """A command line of 300 KiB: 500 5.5.6 once, and the session goes on."""
    s = hostile()
    w = Watch(s, f"long-line-{transport}")
    c = connect(s, transport)
    try:
        replies = Replies(lambda i: ("500 5.5.6 Line too long", "250 2.0.0 OK")[i], 2)
        pump(raw_sock(c), b"NOOP " + b"x" * BIG_LINE + b"\r\nNOOP\r\n", replies)
        c.sock.setblocking(True)
        assert c.cmd("NOOP").code == 250
    finally:
        c.close()
    # and one that never ends, then a hang-up
    c = connect(s, transport)
    pump(raw_sock(c), b"y" * BIG_LINE * 3, None, deadline=30)
    c.close()
    w.check()


@pytest.mark.parametrize("mech", ["LOGIN", "SCRAM-SHA-256", "CRAM-MD5"])
def test_line_of_hundreds_of_kib_in_auth(hostile, mech):
    """The same inside an AUTH exchange (after a 334): 500 5.5.6 and the
    exchange ends; the session goes on."""
    s = hostile()
    w = Watch(s, f"long-auth-line-{mech}")
    with connect(s, "smtps") as c:
        assert c.cmd(f"AUTH {mech}").code == 334
        replies = Replies(lambda i: ("500 5.5.6 Authentication exchange line is too long",
                                     "250 2.0.0 OK")[i], 2)
        pump(raw_sock(c), b"A" * BIG_LINE + b"\r\nNOOP\r\n", replies)
        c.sock.setblocking(True)
        assert c.cmd("NOOP").code == 250
    w.check()


# --- oversized initial responses ------------------------------------------------------

def scram_first(nonce_len, user="bob123"):
    """A SCRAM client-first; with a 6-byte user and a 9,202-byte nonce it is
    9,216 bytes, whose base64 is exactly SASL_LINE_MAX (12,288)."""
    return f"n,,n={user},r=" + "n" * nonce_len


def big_token(n):
    return "eyJhbGciOiJFZERTQSJ9." + "A" * n + ".sig"


# (mechanism, initial response of about the largest size a line allows)
OVERSIZED = [
    ("PLAIN", b64("\0" + "u" * 4600 + "\0" + "p" * 4600)),
    ("LOGIN", b64("u" * 9200)),
    ("CRAM-MD5", b64(f"{USER} " + "0" * 9000)),
    ("SCRAM-SHA-256", b64(scram_first(9202))),
    ("SCRAM-SHA-1", b64(scram_first(9202))),
    ("XOAUTH2", b64(f"user={USER}\x01auth=Bearer {big_token(9000)}\x01\x01")),
    ("OAUTHBEARER", b64(f"n,a={USER},\x01auth=Bearer {big_token(9000)}\x01\x01")),
]


def finish_exchange(c, r, limit=4):
    """Answers 334 challenges with '*' (or the RFC 7628 empty answer after
    an OAuth error challenge) until the exchange ends; the final reply."""
    for _ in range(limit):
        if r.code != 334:
            return r
        r = c.cmd("*", timeout=30)
    return r


@pytest.mark.parametrize("mech,ir", OVERSIZED, ids=[m for m, _ in OVERSIZED])
def test_oversized_initial_response(hostile, mech, ir):
    """An initial response of about SASL_LINE_MAX (12,288) characters, then
    over it and far over it: a 5xx each time, never a crash, and the
    session goes on."""
    s = hostile()
    w = Watch(s, f"oversized-ir-{mech}")
    seen = []
    with connect(s, "smtps") as c:
        assert len(ir) <= 12288, len(ir)
        r = finish_exchange(c, c.cmd(f"AUTH {mech} {ir}", timeout=30))
        seen.append(r.last)
        if mech.startswith("SCRAM") and len(ir) == 12288:
            # the server-first would echo 9,202 bytes of nonce: refused
            assert r.last.startswith("501 5.5.2"), r
        assert 500 <= r.code < 600, r
        assert c.cmd("NOOP").code == 250
        for n in (16384, BIG_LINE):
            replies = Replies(lambda i: ("500 5.5.6 Line too long", "250 2.0.0 OK")[i], 2)
            line = f"AUTH {mech} ".encode() + b"QUFB" * (n // 4) + b"\r\nNOOP\r\n"
            pump(raw_sock(c), line, replies)
            c.sock.setblocking(True)
            seen.append(f"{n}: 500 5.5.6")
        # the same size as a response after a 334, where the mechanism has one
        r = c.cmd(f"AUTH {mech}", timeout=30)
        if r.code == 334:
            r = finish_exchange(c, c.cmd(ir, timeout=30))
            assert 500 <= r.code < 600, r
            seen.append(f"as a response: {r.last}")
        assert c.cmd("NOOP").code == 250
    print(f"[{w.label}] {seen}")
    w.check()


def test_scram_long_nonce_refused(hostile):
    """The reported crash: AUTH SCRAM-SHA-256 after TLS, then a client-first
    with a 9,202-byte nonce on a 12,288-character line."""
    s = hostile()
    w = Watch(s, "scram-long-nonce")
    for transport in ("smtps", "submission-tls"):
        with connect(s, transport) as c:
            assert c.cmd("AUTH SCRAM-SHA-256").code == 334
            first = b64(scram_first(9202))
            assert len(first) == 12288
            r = c.cmd(first, timeout=30)
            assert r.last.startswith("501 5.5.2"), r
            assert c.cmd("NOOP").code == 250
    w.check()


# --- BDAT -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["99999999999999999999", "18446744073709551616", "-1",
                                  "18446744073709551615x", "0x10", ""])
def test_bdat_absurd_size(hostile, size):
    """A chunk size that is no number we can hold: 501 and the connection
    is closed (the stream cannot be resynchronised)."""
    s = hostile()
    w = Watch(s, f"bdat-{size or 'empty'}")
    with connect(s, "mx") as c:
        assert c.cmd("MAIL FROM:<someone@other.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        c.send(f"BDAT {size}\r\n".encode() + b"x" * 4096)
        r = c.reply(timeout=30)
        assert r.code == 501, r
        c.expect_closed(timeout=30)
    w.check()


@pytest.mark.parametrize("authenticated", [False, True])
def test_bdat_huge_chunk_then_close(hostile, authenticated):
    """BDAT 1000000000 LAST, a few MiB (over message_size), then a hang-up:
    nothing is buffered in memory, nothing is queued."""
    s = hostile(limits="message_size = 1M\n")
    w = Watch(s, f"bdat-1e9-{'auth' if authenticated else 'anon'}")
    queued_before = len(s.queued())
    transport = "smtps" if authenticated else "mx"
    c = connect(s, transport, authenticate=authenticated)
    sender = USER if authenticated else "someone@other.test"
    assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    sock = raw_sock(c)
    pump(sock, b"BDAT 1000000000 LAST\r\n" + b"z" * (8 << 20), None, deadline=60)
    c.close()
    wait_for(lambda: sessions_open(s) == 0, timeout=30, what="the session freed")
    assert len(s.queued()) == queued_before
    # without MAIL: the chunk is read and thrown away
    with connect(s, "mx") as c:
        pump(raw_sock(c), b"BDAT 1000000000\r\n" + b"z" * (4 << 20), None, deadline=60)
    wait_for(lambda: sessions_open(s) == 0, timeout=30, what="the session freed")
    w.check()

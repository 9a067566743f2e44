"""PROXY protocol listeners ([listen] proxy_protocol = yes, proxy_from):
the header comes before the greeting (and before the TLS ClientHello on an
implicit-TLS listener), and the address it names is the client everywhere:
the connect/auth/accepted log events, the Received: header and the spool
envelope, bans. Peers not in proxy_from, malformed headers and silence are
closed without a byte and logged as proxy_reject. HAProxy itself, with
send-proxy-v2, is the real balancer in one test.

Linux routes all of 127.0.0.0/8 to lo: a client bound to 127.0.0.2 is
another machine for the server (and for HAProxy).
"""
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request

import pytest

from conftest import (PASSWORD, USER, free_port, make_message, queue_show, spool_body,
                      wait_for, wait_port)
from smtpclient import Closed, SMTPClient, client_context

RCPT = "bob@example.test"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
BAN_TEXT = "421 4.7.0 Too many authentication failures, try again later"


def v1(src, dst="127.0.0.1", sport=40000, dport=587):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, dst, sport=40000, dport=465, tlvs=b""):
    if ":" in src:
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        addrs = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
        fam = 0x11
    body = addrs + struct.pack(">HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body


V2_LOCAL = V2_SIG + b"\x20\x00\x00\x00"


class ProxyClient(SMTPClient):
    """SMTPClient that sends `header` first, as a load balancer does, then
    (implicit_tls) starts TLS, then reads the greeting."""

    def __init__(self, port, header, src="127.0.0.1", implicit_tls=False, timeout=10.0,
                 greeting=True):
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(src, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(header)
        self.tls = False
        self.greeting = None
        if implicit_tls:
            self._wrap(None, "mail.example.test")
        if greeting:
            self.greeting = self.reply()


def with_listener_option(server, listener, lines):
    """Adds lines to [listen NAME] of a not yet started server's config."""
    text = server.conf.read_text()
    head = f"[listen {listener}]\n"
    assert head in text
    server.conf.write_text(text.replace(head, head + lines.rstrip("\n") + "\n", 1))
    return server


def proxied(make_server, proxy_from="127.0.0.1", listeners=("submission",), **kw):
    s = make_server(**kw)
    for name in listeners:
        with_listener_option(s, name, f"proxy_protocol = yes\nproxy_from = {proxy_from}\n")
    return s


def start(s):
    """Starts s; start() probes every port with a bare connect, which the
    PROXY step refuses: those proxy_reject events are left out by callers."""
    s.start()
    return s


def send_mail(c, mark):
    assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
    assert c.cmd(f"RCPT TO:<{RCPT}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(make_message(USER, RCPT, mark) + ".\r\n")
    r = c.reply(timeout=20)
    assert r.code == 250, r
    return r.last.split("queued as ")[1].strip()


def session_of(s, client, proxy="127.0.0.1"):
    ev = s.wait_event("connect", lambda r: r.get("client") == client)
    assert ev["proxy"] == proxy, ev
    return ev["session"]


def proxy_rejects(s, reason_part, client="127.0.0.1"):
    return [e for e in s.events("proxy_reject")
            if reason_part in e["reason"] and e["client"] == client]


def test_v1_header_starttls_auth_and_received(make_server):
    s = start(proxied(make_server))
    with ProxyClient(s.submission, v1("203.0.113.7", dport=s.submission)) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.starttls()
        r = c.cmd("EHLO client.example.test")
        assert "[203.0.113.7]" in r.lines[0], r
        c.login(USER, PASSWORD)
        qid = send_mail(c, "m-proxy-v1")
        c.cmd("QUIT")
    sid = session_of(s, "203.0.113.7")
    auth = s.wait_event("auth", lambda r: r.get("session") == sid)
    assert auth["client"] == "203.0.113.7" and auth["result"] == "ok", auth
    acc = s.wait_event("accepted", lambda r: r.get("queue_id") == qid)
    assert acc["session"] == sid
    body = spool_body(s, qid)
    received = body.split(b"\r\n", 1)[0]
    assert received == b"Received: from client.example.test ([203.0.113.7])", received
    assert queue_show(s, qid)["client_addr"] == "203.0.113.7"
    # the header is not a session of its own: no connect for the balancer
    assert not [e for e in s.events("connect") if e["listener"] == "submission"
                and e["client"] == "127.0.0.1"]


def test_v2_ipv6_source(make_server):
    s = start(proxied(make_server))
    hdr = v2("2001:db8::7", "2001:db8::1", 50000, 587, tlvs=b"\x01\x00\x04smtp\x04\x00\x00")
    with ProxyClient(s.submission, hdr) as c:
        assert c.greeting.code == 220, c.greeting
        r = c.cmd("EHLO client.example.test")
        assert r.lines[0] == "250-mail.example.test Hello client.example.test [2001:db8::7]", r
        c.cmd("QUIT")
    session_of(s, "2001:db8::7")


def test_v2_local_keeps_the_balancer_address(make_server):
    s = start(proxied(make_server))
    with ProxyClient(s.submission, V2_LOCAL) as c:
        assert c.greeting.code == 220, c.greeting
        c.cmd("QUIT")
    with ProxyClient(s.submission, b"PROXY UNKNOWN\r\n") as c:
        assert c.greeting.code == 220, c.greeting
        c.cmd("QUIT")
    wait_for(lambda: len([e for e in s.events("connect") if e["client"] == "127.0.0.1"
                          and e.get("proxy") == "127.0.0.1"]) == 2, what="two LOCAL sessions")


def test_implicit_tls_v2_header_before_handshake(make_server):
    s = start(proxied(make_server, listeners=("smtps",)))
    hdr = v2("198.51.100.20", "127.0.0.1", 61000, s.smtps)
    with ProxyClient(s.smtps, hdr, implicit_tls=True) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.login(USER, PASSWORD)
        qid = send_mail(c, "m-proxy-smtps")
        c.cmd("QUIT")
    sid = session_of(s, "198.51.100.20")
    tls = s.wait_event("tls", lambda r: r.get("session") == sid)
    assert tls["version"].startswith("TLSv1."), tls
    auth = s.wait_event("auth", lambda r: r.get("session") == sid)
    assert auth["client"] == "198.51.100.20", auth
    assert b"([198.51.100.20])" in spool_body(s, qid).split(b"\r\n", 1)[0]
    # the other listeners are unchanged: a direct client is its own address
    with SMTPClient(s.submission) as c:
        assert c.greeting.code == 220
        c.cmd("QUIT")


def test_peer_not_in_proxy_from_is_closed_without_greeting(make_server):
    s = start(proxied(make_server, proxy_from="192.0.2.0/24"))
    with ProxyClient(s.submission, v1("203.0.113.7"), greeting=False) as c:
        assert c.expect_closed(timeout=5) == b""
    wait_for(lambda: proxy_rejects(s, "not in proxy_from"), what="proxy_reject")
    ev = proxy_rejects(s, "not in proxy_from")[0]
    assert ev["listener"] == "submission", ev
    assert not [e for e in s.events("connect") if e["client"] == "203.0.113.7"]


def admin_port(s):
    port = free_port()
    s.conf.write_text(s.conf.read_text() + f"\n[admin]\naddress = 127.0.0.1:{port}\n")
    return port


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


@pytest.mark.parametrize("garbage,reason", [
    (b"EHLO client.example.test\r\n", "not a PROXY protocol header"),
    (b"PROXY TCP4 203.0.113.7 127.0.0.1 040000 587\r\n", "port"),
    (b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 587\n", "LF without CR"),
    (V2_SIG + b"\x21\x11\x00\x0b" + b"\x00" * 11, "shorter"),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "not a PROXY protocol header"),
])
def test_malformed_header_closed_and_logged(make_server, garbage, reason):
    s = proxied(make_server)
    port = admin_port(s)
    start(s)
    with ProxyClient(s.submission, garbage, greeting=False) as c:
        assert c.expect_closed(timeout=5) == b""
    wait_for(lambda: proxy_rejects(s, reason), what=f"proxy_reject {reason}")
    wait_for(lambda: metric(port, 'smtpgate_proxy_rejects_total{reason="malformed"}') == 1,
             what="the malformed counter")
    assert not [e for e in s.events("connect") if e["listener"] == "submission"]


def test_silent_peer_times_out_without_greeting(make_server):
    s = start(proxied(make_server, limits="timeout_command = 2s"))
    t0 = time.monotonic()
    with ProxyClient(s.submission, b"PROXY TCP4 203.0.113.7", greeting=False) as c:
        assert c.expect_closed(timeout=8) == b""
    assert 1.5 < time.monotonic() - t0 < 6
    wait_for(lambda: proxy_rejects(s, "in time"), what="proxy_reject timeout")


def test_ban_applies_to_the_proxied_address(make_server):
    s = proxied(make_server, limits="allow = ::1\nauth_failures_per_ip = 2\nban_time = 1h\n"
                "auth_failures_per_net = 1000\nconnection_rate_per_ip = 1000\n")
    start(s)
    hdr = v1("203.0.113.66", dport=s.submission)
    last = None
    with ProxyClient(s.submission, hdr) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        for i in range(3):
            last = c.auth_plain(USER, f"nope{i}")
            if last.code == 421:
                break
    assert last.last == BAN_TEXT, last
    ban = s.wait_event("ban", lambda r: r.get("address") == "203.0.113.66")
    assert ban["client"] == "203.0.113.66", ban
    # the same proxied address through the same balancer: refused
    with ProxyClient(s.submission, hdr, greeting=False) as c:
        assert c.reply(timeout=5).last == BAN_TEXT
    rej = s.wait_event("reject", lambda r: r.get("reason") == "banned")
    assert rej["client"] == "203.0.113.66" and rej["proxy"] == "127.0.0.1", rej
    # another client behind the balancer is fine, and so is the balancer itself
    with ProxyClient(s.submission, v1("203.0.113.67", dport=s.submission)) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.login(USER, PASSWORD)
    with ProxyClient(s.submission, V2_LOCAL) as c:
        assert c.greeting.code == 220, c.greeting


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def test_haproxy_send_proxy_v2(make_server, tmp_path):
    """HAProxy in TCP mode in front of the submission listener, speaking
    PROXY v2 to it; the client connects to HAProxy from 127.0.0.2."""
    if not os.path.exists(HAPROXY):
        pytest.skip("haproxy is not installed")
    s = start(proxied(make_server))
    front = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""\
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend submission
    bind 127.0.0.1:{front}
    default_backend smtpgate
backend smtpgate
    server s1 127.0.0.1:{s.submission} send-proxy-v2
""")
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    hap = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_port(front, proc=hap)
        # the client's own address is 127.0.0.2; it sends no header itself
        with ProxyClient(front, b"", src="127.0.0.2") as c:
            assert c.greeting.code == 220, c.greeting
            c.submit_ready(USER, PASSWORD, client_context())
            qid = send_mail(c, "m-haproxy")
            c.cmd("QUIT")
    finally:
        hap.terminate()
        try:
            hap.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hap.kill()
            hap.wait()
    sid = session_of(s, "127.0.0.2", proxy="127.0.0.1")
    assert s.wait_event("auth", lambda r: r.get("session") == sid)["client"] == "127.0.0.2"
    assert b"([127.0.0.2])" in spool_body(s, qid).split(b"\r\n", 1)[0]


def test_closed_before_header_is_not_a_session(make_server):
    s = start(proxied(make_server))
    with socket.create_connection(("127.0.0.1", s.submission), timeout=5) as sock:
        sock.sendall(b"PROXY TCP4 ")
    wait_for(lambda: proxy_rejects(s, "closed before"), what="proxy_reject closed")
    with pytest.raises(Closed):
        with ProxyClient(s.submission, b"\r\n\r\n\x00\r\nQUIT\n\x21", greeting=False) as c:
            c.sock.shutdown(socket.SHUT_WR)
            c.reply(timeout=5)


def test_shutdown_with_a_header_pending(make_server):
    """A connection still waiting for its header when the server stops is
    closed and freed (a leak would fail the exit status under ASan)."""
    s = start(proxied(make_server, listeners=("submission", "smtps")))
    socks = []
    for port in (s.submission, s.smtps):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"PROXY TCP4 203.0.113.7 ")
        socks.append(sock)
    time.sleep(0.3)
    t0 = time.monotonic()
    assert s.stop() == 0, s.stderr_text()
    assert time.monotonic() - t0 < 4  # not held by the header timeout
    for sock in socks:
        sock.settimeout(5)
        assert sock.recv(100) == b""
        sock.close()

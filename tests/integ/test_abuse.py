"""Abuse defences: hydra brute-forcing AUTH PLAIN and LOGIN, bans
at the configured count, the real user still getting in from another
loopback address, per-account throttling that spares known clients,
connection floods, slowloris, the per-session command limit, ban
persistence across restarts, `smtpgate ban`, and bad input (enormous and
countless usernames) with bounded server memory.

Linux routes all of 127.0.0.0/8 to lo, so a client socket bound to
127.0.0.2 is "another client" for the server. The default allowlist holds
127.0.0.0/8, so every test here sets `allow` to something else.
"""
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import (PASSWORD, SMTPGATE, USER, free_port, make_message, proc_status_kib,
                      wait_for)
from smtpclient import Closed, SMTPClient, b64, client_context
from zoo import ids, probe

HYDRA = shutil.which("hydra") or "/usr/bin/hydra"

BAN_TEXT = "421 4.7.0 Too many authentication failures, try again later"
TOO_MANY = "421 4.7.0 Too many connections, try again later"


class SrcClient(SMTPClient):
    """SMTPClient whose socket is bound to a source address first."""

    def __init__(self, port, src, implicit_tls=False, timeout=10.0, greeting=True):
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(src, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = False
        self.greeting = None
        if implicit_tls:
            self._wrap(None, "mail.example.test")
        if greeting:
            self.greeting = self.reply()


def limits(**kw):
    base = {"allow": "::1", "auth_failures_per_net": 1000,
            "connection_rate_per_ip": 1000, "connections_per_ip": 200}
    base.update(kw)
    return "\n".join(f"{k} = {v}" for k, v in base.items()) + "\n"


def submit_from(server, src, marker):
    """A whole submission from src: STARTTLS, AUTH, MAIL, RCPT, DATA -> 250."""
    with SrcClient(server.submission, src) as c:
        assert c.greeting.code == 220, c.greeting
        c.submit_ready(USER, PASSWORD)
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(make_message(USER, "bob@example.test", marker) + ".\r\n")
        r = c.reply(timeout=20)
        assert r.code == 250, r
        c.cmd("QUIT")


def auth_plain_from(server, src, user, password):
    with SrcClient(server.submission, src) as c:
        if c.greeting.code != 220:
            return c.greeting
        c.ehlo()
        c.starttls()
        c.ehlo()
        return c.auth_plain(user, password)


def greeting_from(port, src):
    with SrcClient(port, src, greeting=False) as c:
        try:
            return c.reply(timeout=5).last
        except Closed:
            return "closed"


def ban_events(server, address):
    return [e for e in server.events("ban") if e.get("address") == address]


def run_hydra(server, mech, tmp_path, tasks, starttls=False):
    words = tmp_path / "words.txt"
    # the right password is in the list, after the ban: it must never be tried
    # with success (zero false accepts)
    words.write_text("".join(f"wrong-{i}\n" for i in range(12)) + PASSWORD + "\n"
                     + "".join(f"later-{i}\n" for i in range(5)))
    if starttls:
        args = ["-s", str(server.submission), "-m", f"TLS:{mech}"]
    elif mech == "PLAIN":
        # implicit TLS (smtps) port
        args = ["-s", str(server.smtps), "-S", "-m", "PLAIN"]
    else:
        # the submission port with STARTTLS
        args = ["-s", str(server.submission), "-m", "TLS:LOGIN"]
    out = tmp_path / "hydra.out"
    r = subprocess.run([HYDRA, "-I", "-l", USER, "-P", str(words), "-t", str(tasks),
                        "-w", "10", "-W", "1", "-o", str(out), *args, "127.0.0.1", "smtp"],
                       capture_output=True, text=True, timeout=180)
    return r


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_hydra_banned_at_count_real_user_unaffected(make_server, tmp_path, mech):
    if not os.path.exists(HYDRA):
        pytest.skip("hydra is not installed")
    s = make_server(limits=limits(auth_failures_per_ip=5, auth_failures_per_account=50,
                                  ban_time="10m")).start()
    # the real user has used 127.0.0.2 before
    assert auth_plain_from(s, "127.0.0.2", USER, PASSWORD).code == 235

    r = run_hydra(s, mech, tmp_path, tasks=1)
    text = r.stdout + r.stderr
    # zero false accepts: hydra found nothing, the server accepted nobody
    assert "0 valid password" in text or "valid password found" not in text, text
    assert PASSWORD not in text
    ok = [e for e in s.events("auth") if e.get("result") == "ok"]
    assert all(e["client"] != "127.0.0.1" for e in ok), ok

    # the ban triggered at the configured count, with a log event
    ev = s.wait_event("ban", lambda e: e.get("address") == "127.0.0.1")
    assert ev["reason"] == "auth_failures_per_ip"
    assert ev["seconds"] == 600
    with open(s.log) as f:
        lines = [json.loads(x) for x in f]
    pos = next(i for i, e in enumerate(lines) if e.get("event") == "ban")
    fails = [e for e in lines[:pos] if e.get("event") == "auth"
             and e.get("result") == "fail" and e.get("client") == "127.0.0.1"]
    assert len(fails) == 5, fails
    # one task: nothing was in flight, so no failure after the ban either
    fails = [e for e in lines if e.get("event") == "auth"
             and e.get("result") == "fail" and e.get("client") == "127.0.0.1"]
    assert len(fails) == 5, fails
    assert {e["mechanism"] for e in fails} == {mech}
    assert "password" not in json.dumps(ev).lower()

    # new connections from the banned address get 421 on both ports
    assert greeting_from(s.submission, "127.0.0.1") == BAN_TEXT
    assert greeting_from(s.mx, "127.0.0.1") == BAN_TEXT
    # spoofed PROXY-protocol input does not change who the client is
    with SrcClient(s.mx, "127.0.0.1", greeting=False) as c:
        c.send("PROXY TCP4 192.0.2.1 127.0.0.1 5555 25\r\nEHLO x\r\n")
        assert c.reply(timeout=5).last == BAN_TEXT

    # the real user, from another address, still gets in and submits
    submit_from(s, "127.0.0.2", f"hydra-{mech}")
    # and a third, fresh address is not banned either (no net ban here)
    assert auth_plain_from(s, "127.0.0.3", USER, PASSWORD).code == 235


def test_hydra_parallel_tasks_no_false_accepts(make_server, tmp_path):
    """Four parallel hydra tasks: in-flight attempts after the ban get 421,
    never a 235; the ban still comes at the count (give or take the tasks
    in flight)."""
    if not os.path.exists(HYDRA):
        pytest.skip("hydra is not installed")
    s = make_server(limits=limits(auth_failures_per_ip=6, ban_time="10m")).start()
    # the submission port: a banned client is told so there (421 greeting);
    # on the implicit-TLS port it would only see closed connections
    r = run_hydra(s, "PLAIN", tmp_path, tasks=4, starttls=True)
    text = r.stdout + r.stderr
    assert PASSWORD not in text
    assert not [e for e in s.events("auth") if e.get("result") == "ok"]
    s.wait_event("ban", lambda e: e.get("address") == "127.0.0.1")
    fails = [e for e in s.events("auth") if e.get("result") == "fail"]
    assert 6 <= len(fails) <= 6 + 4, fails
    assert greeting_from(s.submission, "127.0.0.1") == BAN_TEXT


def test_account_throttle_spares_known_clients(make_server):
    """An attacker rotating addresses stays under the per-IP count; past
    auth_failures_per_account, new clients of the account get 454 without a
    password check, the real user's known client keeps working."""
    s = make_server(limits=limits(auth_failures_per_ip=100,
                                  auth_failures_per_account=4)).start()
    assert auth_plain_from(s, "127.0.0.2", USER, PASSWORD).code == 235
    for i in range(4):
        r = auth_plain_from(s, f"127.0.1.{i + 1}", USER, f"guess{i}")
        assert r.last == "535 5.7.8 Authentication credentials invalid", r
    # a new address, even with the right password: 454, and a log event
    r = auth_plain_from(s, "127.0.0.3", USER, PASSWORD)
    assert r.last == ("454 4.7.0 Temporary authentication failure: too many failed attempts,"
                      " try again later"), r
    ev = s.wait_event("throttle")
    assert ev["account"] == USER and ev["client"] == "127.0.0.3"
    # the known client: 235, and it can submit
    submit_from(s, "127.0.0.2", "throttle")
    # other accounts are not affected
    s.add_user("carol@example.test", "carol's password")
    assert auth_plain_from(s, "127.0.0.3", "carol@example.test",
                           "carol's password").code == 235


def test_net_ban_spares_known_good_pairs(make_server):
    """Failures from other addresses of 127.0.0.0/24 ban the network; alice,
    who logged in from 127.0.0.9 before, still gets in from there, but only
    to her own account; a new address of the network gets the ban's 421 at
    connect; a ban of 127.0.0.9 itself applies to her."""
    s = make_server(limits=limits(auth_failures_per_ip=2, auth_failures_per_net=4,
                                  ban_time="10m")).start()
    s.add_user("carol@example.test", "carol's password")
    assert auth_plain_from(s, "127.0.0.9", USER, PASSWORD).code == 235
    replies = [auth_plain_from(s, f"127.0.0.{20 + i}", "mallory@example.test", "guess").last
               for i in range(4)]
    assert replies == ["535 5.7.8 Authentication credentials invalid"] * 3 + [BAN_TEXT], replies
    ev = s.wait_event("ban", lambda e: e.get("address") == "127.0.0.0/24")
    assert ev["reason"] == "auth_failures_per_net"
    # a new address of the network: banned at connect
    assert greeting_from(s.submission, "127.0.0.30") == BAN_TEXT
    # alice's known-good address: through to AUTH, and her mail goes out
    submit_from(s, "127.0.0.9", "net-ban")
    # another account from that address: the ban's reply, then the close
    with SrcClient(s.submission, "127.0.0.9") as c:
        assert c.greeting.code == 220
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert c.auth_plain("carol@example.test", "carol's password").last == BAN_TEXT
        with pytest.raises(Closed):
            c.cmd("NOOP")
    ev = s.wait_event("reject", lambda e: e.get("account") == "carol@example.test")
    assert ev["client"] == "127.0.0.9" and ev["code"] == 421 and ev["reason"] == "banned"
    # carol from outside the banned network is not affected
    assert auth_plain_from(s, "127.0.1.5", "carol@example.test", "carol's password").code == 235
    # alice mistyping: a 535, counted for her address, whose own ban
    # (auth_failures_per_ip = 2) then applies to her as to anyone
    with SrcClient(s.submission, "127.0.0.9") as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert c.auth_plain(USER, "typo").last == "535 5.7.8 Authentication credentials invalid"
        assert c.auth_plain(USER, "typo2").last == BAN_TEXT
    ev = s.wait_event("ban", lambda e: e.get("address") == "127.0.0.9")
    assert ev["reason"] == "auth_failures_per_ip"
    assert greeting_from(s.submission, "127.0.0.9") == BAN_TEXT
    assert greeting_from(s.submission, "127.0.1.5").startswith("220")


def test_probe_names_smtpgate_throttle_and_ban(make_server):
    """smtpgate's own refusals after failed logins (the account throttle's
    454, the ban's 421) are auth-too-many-attempts for `smtpgate probe`, not
    a back-end outage or an overload; the 454 is not retried."""
    s = make_server(limits=limits(auth_failures_per_ip=3, auth_failures_per_account=4,
                                  ban_time="10m")).start()
    for i in range(4):
        assert auth_plain_from(s, f"127.0.1.{i + 1}", USER, f"guess{i}").code == 535
    rc, doc, err = probe(f"127.0.0.1:{s.submission}", "--cafile", s.pki.root, "--user", USER,
                         "--auth", "PLAIN", "--password-stdin", stdin=PASSWORD + "\n")
    assert rc == 1, (doc, err)
    f = [f for f in doc["findings"] if f["id"] == "auth-too-many-attempts"][0]
    assert f["evidence"] == ("AUTH 454 4.7.0 Temporary authentication failure: too many "
                             "failed attempts, try again later"), f
    assert "(454 4.7.0)" in f["cause"] and "provider" not in f, f
    assert "auth-temporary-failure" not in ids(doc)
    assert len(s.events("throttle")) == 1  # one AUTH: not retried
    # three failures from 127.0.0.1 ban it (the third gets the 421): then
    # the probe's greeting is the 421
    for i in range(3):
        assert auth_plain_from(s, "127.0.0.1", "carol@example.test", f"guess{i}").code in (
            535, 421)
    s.wait_event("ban", lambda e: e.get("address") == "127.0.0.1")
    rc, doc, err = probe(f"127.0.0.1:{s.submission}", "--cafile", s.pki.root)
    assert rc == 1, (doc, err)
    f = [f for f in doc["findings"] if f["id"] == "auth-too-many-attempts"][0]
    assert f["evidence"] == "greeting: " + BAN_TEXT, f
    assert "service-unavailable" not in ids(doc)


def test_connection_flood_and_server_limit(make_server):
    s = make_server(limits=limits(connections_per_ip=5, connection_rate_per_ip=20)).start()
    wait_for(lambda: len(s.events("disconnect")) >= 3, what="probes closed")
    held, refused = [], 0
    try:
        for _ in range(30):
            c = SrcClient(s.mx, "127.0.0.1", greeting=False)
            try:
                line = c.reply(timeout=5).last
            except Closed:
                line = "closed"
            if line.startswith("220"):
                held.append(c)
            else:
                assert line == TOO_MANY, line
                refused += 1
                c.close()
        assert len(held) == 5 and refused == 25
        # a real client from elsewhere submits fine meanwhile
        submit_from(s, "127.0.0.2", "flood")
    finally:
        for c in held:
            c.close()
    # the flood used up its rate: still refused after closing everything
    time.sleep(0.3)
    assert greeting_from(s.mx, "127.0.0.1") == TOO_MANY
    assert s.events("reject")

    # `connections`: the server-wide limit applies to everyone
    s2 = make_server(limits=limits(connections=3)).start()
    # the start-up probes of the three ports must be gone first
    wait_for(lambda: len(s2.events("disconnect")) >= 3, what="probes closed")
    held = [SrcClient(s2.mx, f"127.0.2.{i + 1}") for i in range(3)]
    try:
        assert all(c.greeting.code == 220 for c in held)
        assert greeting_from(s2.mx, "127.0.2.9") == TOO_MANY
    finally:
        for c in held:
            c.close()
    wait_for(lambda: greeting_from(s2.mx, "127.0.2.9").startswith("220"), what="room")


def test_slowloris_does_not_stop_real_client(make_server):
    s = make_server(limits=limits(connections=1000, connections_per_ip=400,
                                  connection_rate_per_ip=2000, timeout_command="60s")).start()
    socks = []
    try:
        for i in range(300):
            port = (s.submission, s.smtps, s.mx)[i % 3]
            k = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=("127.0.0.1", 0))
            if i % 2:
                k.send(b"E")  # one byte of a command, never finished
            socks.append(k)
        t0 = time.monotonic()
        submit_from(s, "127.0.0.2", "slowloris")
        assert time.monotonic() - t0 < 10
        # and from the same address as the stalled ones
        with SrcClient(s.mx, "127.0.0.1") as c:
            assert c.greeting.code == 220
    finally:
        for k in socks:
            k.close()


def test_commands_per_session(make_server):
    s = make_server(limits=limits(commands=10)).start()
    with SMTPClient(s.mx) as c:
        for _ in range(10):
            assert c.cmd("NOOP").code == 250
        r = c.cmd("NOOP")
        assert r.last == "421 4.7.0 Too many commands, closing connection", r
        c.expect_closed()


def ban_cmd(server, *args):
    r = subprocess.run([SMTPGATE, "ban", *args, "-c", str(server.conf), "--json"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def fail_auth_from(server, src, n):
    with SrcClient(server.submission, src) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        last = None
        for i in range(n):
            last = c.auth_plain(USER, f"nope{i}")
            if last.code == 421:
                break
        return last


def test_ban_persists_across_restart_and_ban_command(make_server):
    s = make_server(limits=limits(auth_failures_per_ip=2, ban_time="1h")).start()
    r = fail_auth_from(s, "127.0.0.1", 3)
    assert r.last == BAN_TEXT, r
    assert greeting_from(s.submission, "127.0.0.1") == BAN_TEXT
    assert s.stop() == 0

    state = s.spool / "bans.json"
    doc = json.loads(state.read_text())
    assert [b["address"] for b in doc["bans"]] == ["127.0.0.1"]
    # the stopped server: the command works on the state file
    rc, out, err = ban_cmd(s, "list")
    assert rc == 0, err
    assert out["source"] == "state_file"
    assert [b["address"] for b in out["bans"]] == ["127.0.0.1"]
    assert 3500 < out["bans"][0]["seconds"] <= 3600
    rc, out, _ = ban_cmd(s, "add", "127.0.0.9", "--seconds", "5m")
    assert rc == 0 and out["source"] == "state_file" and out["seconds"] == 300
    rc, out, _ = ban_cmd(s, "add", "10.1.2.3/16")
    assert rc == 0 and out["address"] == "10.1.0.0/16"
    text = subprocess.run([SMTPGATE, "ban", "list", "-c", str(s.conf)],
                          capture_output=True, text=True, timeout=30).stdout
    assert "state file" in text and "127.0.0.9" in text and "10.1.0.0/16" in text

    # restart: both bans are in force
    s.start()
    assert greeting_from(s.submission, "127.0.0.1") == BAN_TEXT
    assert greeting_from(s.submission, "127.0.0.9") == BAN_TEXT
    assert greeting_from(s.submission, "127.0.0.2").startswith("220")
    assert s.stop() == 0

    rc, out, _ = ban_cmd(s, "del", "127.0.0.1")
    assert rc == 0 and out["result"] == "deleted"
    rc, out, _ = ban_cmd(s, "del", "127.0.0.1")
    assert rc == 1
    assert subprocess.run([SMTPGATE, "ban", "add", "not-an-ip", "-c", str(s.conf)],
                          capture_output=True, timeout=30).returncode == 2
    s.start()
    assert greeting_from(s.submission, "127.0.0.1").startswith("220")
    assert greeting_from(s.submission, "127.0.0.9") == BAN_TEXT


def test_ban_command_against_running_server(make_server):
    admin = free_port()
    s = make_server(limits=limits(auth_failures_per_ip=3),
                    extra=f"[admin]\naddress = 127.0.0.1:{admin}\n").start()
    rc, out, err = ban_cmd(s, "add", "127.0.0.7", "--seconds", "2m")
    assert rc == 0, err
    assert out["source"] == "server" and out["address"] == "127.0.0.7"
    assert greeting_from(s.submission, "127.0.0.7") == BAN_TEXT
    ev = s.wait_event("ban", lambda e: e.get("address") == "127.0.0.7")
    assert ev["reason"] == "manual"
    # the ban shows in /metrics and in the plain HTTP API
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10).read()
    assert b"\nsmtpgate_bans_active 1\n" in metrics
    api = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{admin}/bans", timeout=10).read())
    assert [b["address"] for b in api["bans"]] == ["127.0.0.7"]
    rc, out, _ = ban_cmd(s, "list")
    assert rc == 0 and out["source"] == "server"
    assert [b["address"] for b in out["bans"]] == ["127.0.0.7"]
    text = subprocess.run([SMTPGATE, "ban", "list", "-c", str(s.conf)],
                          capture_output=True, text=True, timeout=30).stdout
    assert "running server" in text
    rc, out, _ = ban_cmd(s, "del", "127.0.0.7")
    assert rc == 0 and out["source"] == "server"
    assert greeting_from(s.submission, "127.0.0.7").startswith("220")
    rc, out, _ = ban_cmd(s, "del", "127.0.0.7")
    assert rc == 1
    # the running server saved its list: a manual ban is in the state file
    rc, out, _ = ban_cmd(s, "add", "127.0.0.8")
    assert rc == 0
    wait_for(lambda: "127.0.0.8" in (s.spool / "bans.json").read_text()
             if (s.spool / "bans.json").exists() else False, what="state file")


def rss_kib(server):
    """VmRSS of the processes that hold per-name state: smtpgate-smtp (the
    limiter) and smtpgate-auth (the SCRAM exchanges)."""
    return sum(proc_status_kib(server.child_pid(comm), ("VmRSS",))["VmRSS"]
               for comm in ("smtpgate-smtp", "smtpgate-auth"))


def scram_blast(port, names):
    """SCRAM-SHA-256 client-first for each name then a client-final with a
    bogus proof, pipelined on one implicit-TLS connection: the server looks
    up (fake) keys for every name and answers 535 to each."""
    c = SMTPClient(port, implicit_tls=True, timeout=60)
    try:
        c.ehlo()
        out = []
        for n in names:
            first = f"n,,n={n},r=abcdefghijklmnop"
            final = "c=biws,r=abcdefghijklmnopXXXX,p=" + b64(b"\0" * 32)
            out.append(f"AUTH SCRAM-SHA-256 {b64(first)}\r\n{b64(final)}\r\n")
        c.send("".join(out))
        codes = []
        for _ in names:
            r = c.reply(timeout=60)
            if r.code == 334:
                r = c.reply(timeout=60)
            codes.append(r.code)
        return codes
    finally:
        c.close()


def test_enormous_and_countless_usernames_bounded_memory(make_server, monkeypatch):
    """Bad input: usernames of the largest size a line allows, and 100,000
    distinct usernames from one client: correct replies, no crash, and the
    server's memory stays bounded (the limiter's tables are fixed)."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (opts + ":" if opts else "") + "quarantine_size_mb=4")
    # allowlisted client (the default allowlist), so no ban stops the run
    s = make_server(mechanisms="SCRAM-SHA-256 PLAIN LOGIN",
                    limits="errors = 1000\ncommands = 100000\n").start()
    smtp = s.child_pid("smtpgate-smtp")

    # enormous usernames: PLAIN and LOGIN at the line limit
    big = "u" * 9000
    with SMTPClient(s.smtps, implicit_tls=True) as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + b64(f"\0{big}\0pw"), timeout=30)
        assert r.code in (535, 500, 501), r
        r = c.cmd("AUTH LOGIN", timeout=30)
        assert r.code == 334
        r = c.cmd(b64(big), timeout=30)
        if r.code == 334:
            r = c.cmd(b64("pw"), timeout=30)
        assert r.code in (535, 500, 501), r
        r = c.cmd("AUTH PLAIN " + "A" * 20000, timeout=30)
        assert r.code in (500, 501), r

    total = 100_000
    batch = 800
    done = 0
    rss0 = None
    while done < total:
        names = [f"nobody{done + i}@example.test" for i in range(batch)]
        codes = scram_blast(s.smtps, names)
        assert all(code == 535 for code in codes), set(codes)
        done += batch
        if rss0 is None and done >= 10_000:
            rss0 = rss_kib(s)
    rss1 = rss_kib(s)
    assert s.proc.poll() is None
    assert s.child_pid("smtpgate-smtp") == smtp, s.events("child_exit")
    # 90,000 more names must not cost memory per name (they would be
    # ~100 bytes each at the very least: 9 MB)
    assert rss1 - rss0 < 8 * 1024, (rss0, rss1)
    with SMTPClient(s.submission) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert c.login(USER, PASSWORD)


def scram_first_from(server, src, user):
    """AUTH SCRAM-SHA-256 with a client-first message from src on the smtps
    port; returns the client (after the server-first 334) or a reply."""
    c = SrcClient(server.smtps, src, implicit_tls=True)
    c.ehlo()
    r = c.cmd("AUTH SCRAM-SHA-256 " + b64(f"n,,n={user},r=abcdefghijklmnop"))
    return c, r


@pytest.mark.parametrize("how", ["star", "close"])
def test_scram_abandoned_after_server_first_counts(make_server, how):
    """A SCRAM exchange abandoned after server-first (with '*' or by
    closing the connection) is an AUTH failure for the limiter, so salts
    cannot be collected without meeting the ban; one abandoned before the
    server's challenge is not."""
    s = make_server(mechanisms="SCRAM-SHA-256 PLAIN",
                    limits=limits(auth_failures_per_ip=3, ban_time="10m")).start()
    # abandoned before any key lookup: not counted, however often
    for _ in range(5):
        with SrcClient(s.smtps, "127.0.0.4", implicit_tls=True) as c:
            c.ehlo()
            assert c.cmd("AUTH SCRAM-SHA-256").code == 334
            assert c.cmd("*").code == 501
    assert not ban_events(s, "127.0.0.4")

    for i in range(3):
        c, r = scram_first_from(s, "127.0.0.5", f"someone{i}@example.test")
        assert r.code == 334, r
        assert base64.b64decode(r.last.split()[1]).startswith(b"r=abcdefghijklmnop")
        if how == "star":
            # the third failure bans the client: 421 instead of 501
            want = BAN_TEXT if i == 2 else "501 5.7.0 Authentication aborted"
            assert c.cmd("*").last == want
        c.close()
    ev = s.wait_event("ban", lambda e: e.get("address") == "127.0.0.5")
    assert ev["reason"] == "auth_failures_per_ip"
    assert greeting_from(s.smtps, "127.0.0.5") in ("closed", BAN_TEXT)
    aborted = [e for e in s.events("auth") if e.get("client") == "127.0.0.5"]
    assert len(aborted) == 3, aborted
    assert all(e["result"] == "aborted" and "challenge" in e["reason"] for e in aborted)
    # the real user, elsewhere, is untouched
    assert auth_plain_from(s, "127.0.0.6", USER, PASSWORD).code == 235

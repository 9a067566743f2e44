"""/metrics (checked by promtool),
/healthz, the fail2ban filter of contrib/ against real log lines, and the
sending quotas (452 4.7.1, hold of queued mail, alert, unlock, release)."""
import json
import pathlib
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import (PASSWORD, ROOT, SMTPGATE, USER, free_port, make_message, metrics,
                      wait_for, wait_metric)
from smtpclient import SMTPClient

PROMTOOL = "/usr/bin/promtool"
FILTER = ROOT / "contrib" / "fail2ban" / "filter.d" / "smtpgate.conf"
RCPT = "bob@example.net"


def admin_server(make_server, limits="", **kw):
    port = free_port()
    s = make_server(extra=f"[admin]\naddress = 127.0.0.1:{port}\n", limits=limits, **kw)
    s.admin = port
    return s


def http(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def send(server, marker, user=USER, password=PASSWORD, rcpts=(RCPT,), client=None):
    """One message; returns (MAIL reply, [RCPT replies], final reply or None)."""
    own = client is None
    c = client or SMTPClient(server.submission)
    try:
        if own:
            c.submit_ready(user, password)
        mail = c.cmd(f"MAIL FROM:<{user}>")
        if mail.code != 250:
            return mail, [], None
        rr = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
        if not any(r.code == 250 for r in rr):
            c.cmd("RSET")
            return mail, rr, None
        d = c.cmd("DATA")
        assert d.code == 354, d
        c.send(make_message(user, rcpts[0], marker).encode() + b".\r\n")
        return mail, rr, c.reply()
    finally:
        if own:
            c.close()


def failed_login(server, user=USER, password="wrong password"):
    with SMTPClient(server.submission) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.auth_plain(user, password)
        assert r.code == 535, r


def run(*args, **kw):
    return subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=60, **kw)


# --- /metrics, /healthz ---------------------------------------------------------

def test_metrics_promtool_and_counters(make_server):
    s = admin_server(make_server).start()
    # start-up probes (wait_port) already connected, maybe before the smtp
    # process took them from the backlog: wait until they are all served
    # (their greetings counted), then compare differences
    def settled():
        a = metrics(s.admin)[1]
        time.sleep(0.3)
        b = metrics(s.admin)[1]
        return b if (b["smtpgate_connections_open"] == 0 and
                     b['smtpgate_replies_total{code="220"}'] ==
                     a.get('smtpgate_replies_total{code="220"}')) else None
    before = wait_for(settled, what="start-up probes closed")
    assert before["smtpgate_bans_active"] == 0
    assert before["smtpgate_messages_accepted_total"] == 0

    failed_login(s)
    mail, rr, final = send(s, "metrics-1")
    assert final.code == 250, final
    body, v = metrics(s.admin)

    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr, body)

    def delta(k):
        return v.get(k, 0) - before.get(k, 0)

    assert delta('smtpgate_auth_attempts_total{mechanism="PLAIN",result="ok"}') == 1
    assert delta('smtpgate_auth_attempts_total{mechanism="PLAIN",result="fail"}') == 1
    assert delta('smtpgate_replies_total{code="535"}') == 1
    assert delta('smtpgate_replies_total{code="235"}') == 1
    assert delta('smtpgate_replies_total{code="354"}') == 1
    assert delta('smtpgate_replies_total{code="220"}') == 4  # 2 greetings, 2 STARTTLS
    assert delta('smtpgate_tls_sessions_total{version="TLSv1.3"}') == 2
    assert delta("smtpgate_connections_total") == 2
    assert delta("smtpgate_messages_accepted_total") == 1
    assert v["smtpgate_commit_latency_seconds_count"] == 1
    assert v['smtpgate_commit_latency_seconds_bucket{le="+Inf"}'] == 1
    assert 0 < v["smtpgate_commit_latency_seconds_sum"] < 5
    # the two PLAIN checks went to smtpgate-auth and back: timed, each once
    check = 'smtpgate_auth_check_seconds'
    assert delta(check + '_count{request="plain"}') == 2
    assert delta(check + '_bucket{request="plain",le="+Inf"}') == 2
    assert 0 < delta(check + '_sum{request="plain"}') < 5
    assert v[check + '_bucket{request="plain",le="30"}'] == v[check + '_count{request="plain"}']
    assert check + '_count{request="sasl"}' not in v
    assert v['smtpgate_queue_messages{state="queued"}'] == len(s.queued()) == 1
    assert v['smtpgate_queue_messages{state="held"}'] == 0
    assert 0 <= v["smtpgate_queue_oldest_age_seconds"] < 60
    # sessions closed: the gauge goes back (the close is asynchronous)
    wait_for(lambda: metrics(s.admin)[1]["smtpgate_connections_open"] == 0,
             what="connections_open back to 0")
    for name in ("smtpgate_auth_attempts_total", "smtpgate_replies_total",
                 "smtpgate_tls_sessions_total", "smtpgate_connections_total",
                 "smtpgate_connections_open", "smtpgate_bans_active",
                 "smtpgate_queue_messages", "smtpgate_queue_oldest_age_seconds",
                 "smtpgate_commit_latency_seconds", "smtpgate_auth_check_seconds",
                 "smtpgate_messages_accepted_total",
                 "smtpgate_quota_exceeded_total"):
        assert f"# TYPE {name} " in body, name
        assert f"# HELP {name} " in body, name


def test_auth_check_seconds_by_request(make_server):
    """A SCRAM exchange is three requests to smtpgate-auth (the start, which
    looks up the keys, the proof's step, and the client's empty answer to the
    server's signature): each is timed as "sasl"."""
    s = admin_server(make_server, mechanisms="SCRAM-SHA-256 PLAIN").start()
    check = 'smtpgate_auth_check_seconds'
    r = subprocess.run(["gsasl", "--client", "--smtp", "--mechanism", "SCRAM-SHA-256",
                        "--connect", f"127.0.0.1:{s.submission}", "-a", USER, "-p", PASSWORD,
                        "--quiet", "--starttls", "--x509-ca-file", str(s.pki.root),
                        "--no-cb"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    v = wait_metric(s.admin, check + '_count{request="sasl"}', 3)
    assert v[check + '_bucket{request="sasl",le="+Inf"}'] == 3
    assert 0 < v[check + '_sum{request="sasl"}'] < 5
    assert check + '_count{request="plain"}' not in v


def test_healthz_and_admin_errors(make_server):
    s = admin_server(make_server).start()
    status, _, body = http(s.admin, "/healthz")
    assert (status, body) == (200, "ok\n")
    assert http(s.admin, "/nothing")[0] == 404
    assert http(s.admin, "/metrics", method="POST")[0] == 405
    assert http(s.admin, "/metrics", method="PUT")[0] in (405, 501)
    # the spool is not writable: 503 (root ignores permissions; use a read-only bind
    # when possible, else just check the healthy path)
    spool = s.spool
    spool.chmod(0o500)
    try:
        probe = spool / "probe"
        try:
            probe.write_text("x")
            probe.unlink()
            writable_anyway = True
        except OSError:
            writable_anyway = False
        if not writable_anyway:
            status, _, body = http(s.admin, "/healthz")
            assert status == 503 and "unhealthy" in body, body
    finally:
        spool.chmod(0o700)
    assert http(s.admin, "/healthz")[0] == 200


def test_admin_is_off_without_section(server):
    # no [admin]: nothing listens on the default port of this server's config
    text = server.conf.read_text()
    assert "[admin]" not in text


# --- fail2ban ---------------------------------------------------------------------

def fail2ban_regex(log, filt=FILTER):
    r = subprocess.run(["fail2ban-regex", "--print-all-matched", str(log), str(filt)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", r.stdout)
    assert m, r.stdout
    return int(m.group(3)), r.stdout


def test_fail2ban_filter_on_real_log_lines(make_server, tmp_path):
    s = make_server().start()
    failed_login(s)
    failed_login(s, user="nobody@example.test")
    with SMTPClient(s.submission) as c:
        c.submit_ready(USER, PASSWORD)
    s.wait_event("auth", lambda r: r.get("result") == "ok")
    lines = s.log.read_text().splitlines()
    fails = [l for l in lines if json.loads(l).get("event") == "auth"
             and json.loads(l).get("result") == "fail"]
    oks = [l for l in lines if json.loads(l).get("event") == "auth"
           and json.loads(l).get("result") == "ok"]
    assert len(fails) == 2 and len(oks) == 1, lines
    assert all(json.loads(l)["client"] == "127.0.0.1" for l in fails)

    f = tmp_path / "fail.log"
    f.write_text("\n".join(fails) + "\n")
    n, out = fail2ban_regex(f)
    assert n == 2, out
    assert "127.0.0.1" in out
    o = tmp_path / "ok.log"
    o.write_text("\n".join(oks) + "\n")
    n, out = fail2ban_regex(o)
    assert n == 0, out
    # the whole log: exactly the failures (connect, tls, reject... lines do not match)
    n, out = fail2ban_regex(s.log)
    assert n == 2, out


# --- quotas -----------------------------------------------------------------------

def queue_states(server):
    return {m["id"]: m["state"] for m in server.queued()}


def test_quota_messages_hold_alert_unlock_release(make_server):
    s = admin_server(make_server, limits="quota_messages_per_day = 3").start()
    s.add_user("carol@example.test", "carol password")
    ids = []
    for i in range(3):
        mail, rr, final = send(s, f"q{i}")
        assert final.code == 250, final
        ids.append(final.last.split()[-1])
    # another user's message is not touched by alice's hold
    _, _, other = send(s, "carol", user="carol@example.test", password="carol password")
    assert other.code == 250
    other_id = other.last.split()[-1]

    mail, _, _ = send(s, "q3")
    assert mail.last.startswith("452 4.7.1 "), mail
    alert = s.wait_event("alert", lambda r: r.get("user") == USER)
    assert alert["level"] == "alert"
    assert alert["limit"] == "messages"
    assert alert["messages"] == 3 and alert["messages_per_day"] == 3
    assert alert["client"] == "127.0.0.1"
    wait_for(lambda: all(queue_states(s).get(i) == "held" for i in ids),
             what="alice's messages held")
    assert queue_states(s)[other_id] == "queued"
    _, v = metrics(s.admin)
    assert v['smtpgate_quota_exceeded_total{limit="messages"}'] == 1
    assert v['smtpgate_queue_messages{state="held"}'] == 3
    assert v['smtpgate_replies_total{code="452"}'] == 1

    # still refused: the account is on hold, in a new session too
    mail, _, _ = send(s, "q4")
    assert mail.code == 452, mail
    locked = s.spool / "quota-locks"
    assert USER in locked.read_text().split()
    assert json.loads(http(s.admin, "/quota")[2])["locked"] == [USER]

    r = run("user", "unlock", USER, "-f", str(s.users), "-c", str(s.conf))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "quota" in r.stdout
    s.wait_event("quota_unlock", lambda e: e.get("user") == USER)
    mail, _, final = send(s, "q5")
    assert final is not None and final.code == 250, (mail, final)
    wait_for(lambda: USER not in locked.read_text().split(), what="state file rewritten")

    r = run("queue", "release", ids[0], "-c", str(s.conf))
    assert r.returncode == 0, r.stderr
    st = queue_states(s)
    assert st[ids[0]] == "queued" and st[ids[1]] == "held"


def test_quota_recipients(make_server):
    s = admin_server(make_server, limits="quota_recipients_per_day = 2\n"
                                         "quota_action = reject").start()
    mail, rr, final = send(s, "r1", rcpts=("a@example.net", "b@example.net"))
    assert [r.code for r in rr] == [250, 250] and final.code == 250
    # known recipients are free, a third distinct one is over: 550 5.7.1 (reject)
    with SMTPClient(s.submission) as c:
        c.submit_ready(USER, PASSWORD)
        assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
        assert c.cmd("RCPT TO:<A@example.net>").code == 250
        r = c.cmd("RCPT TO:<c@example.net>")
        assert r.last.startswith("550 5.7.1 "), r
        # locked now: the transaction cannot be completed either
        d = c.cmd("DATA")
        assert d.code == 354
        c.send(make_message(USER, "a@example.net", "r2").encode() + b".\r\n")
        assert c.reply().last.startswith("550 5.7.1 ")
    alert = s.wait_event("alert", lambda r: r.get("user") == USER)
    assert alert["limit"] == "recipients" and alert["recipients"] == 2
    wait_for(lambda: list(queue_states(s).values()) == ["held"], what="held")

    r = run("user", "unlock", USER, "-c", str(s.conf))
    assert r.returncode == 0, (r.stdout, r.stderr)
    mail, rr, final = send(s, "r3", rcpts=("c@example.net",))
    assert final.code == 250, (mail, rr, final)


def test_quota_lock_survives_restart_and_offline_unlock(make_server):
    s = make_server(limits="quota_messages_per_day = 1")  # no [admin]: the state file
    s.start()
    assert send(s, "a")[2].code == 250
    assert send(s, "b")[0].code == 452
    s.wait_event("quota_hold", lambda r: r.get("held") == 1)
    assert s.stop() == 0
    s.start()
    assert send(s, "c")[0].code == 452  # still locked after the restart
    # without [admin] the command edits the state file; the server picks it up
    r = run("user", "unlock", USER, "-f", str(s.users), "-c", str(s.conf))
    assert r.returncode == 0, (r.stdout, r.stderr)
    s.wait_event("quota_unlock", lambda e: e.get("user") == USER, timeout=15)
    assert send(s, "d")[2].code == 250

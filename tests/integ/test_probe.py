"""`smtpgate probe` against a zoo of endpoints (tests/integ/zoo.py): smtpgate
itself (good and misused), openssl s_server with bad certificates, scripted
Python servers that misbehave on purpose, and hostile servers. Each case
checks the finding ids in the --json output and the exit status; every
probe run has a wall-clock limit and every endpoint is stopped at the end.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import PASSWORD, SMTPGATE, USER, free_port
from zoo import script  # noqa: F401 (a fixture)
from zoo import (SServer, ZooPKI, ids, probe, severity, smtp_dialogue,
                 tls_server_context)


@pytest.fixture(scope="module")
def zpki(tmp_path_factory):
    return ZooPKI(tmp_path_factory.mktemp("zoo-pki"))


@pytest.fixture
def s_server(tmp_path):
    made = []

    def make(leaf, extra=()):
        s = SServer(tmp_path, leaf, extra)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


# --- smtpgate itself -----------------------------------------------------------------

def test_smtpgate_good_starttls(server, pki):
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--starttls", "--cafile", pki.root)
    assert rc == 0, (doc, err)
    assert doc["mode"] == "starttls"
    assert doc["banner"].startswith("220 ")
    assert doc["tls"]["verified"] is True
    assert doc["tls"]["name_match"] is True
    assert doc["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert len(doc["tls"]["chain"]) == 2  # leaf and intermediate sent
    assert doc["capabilities"]["before_tls"]["starttls"] is True
    assert doc["capabilities"]["before_tls"]["auth"] is False  # AUTH only inside TLS
    assert "PLAIN" in doc["capabilities"]["after_tls"]["mechanisms"]
    assert "auth-offered-cleartext" not in ids(doc)
    assert [e for e in doc["transcript"] if e["dir"] == "C" and e["text"] == "STARTTLS"]


def test_smtpgate_good_implicit_tls(server, pki):
    rc, doc, err = probe(f"127.0.0.1:{server.smtps}", "--tls", "--cafile", pki.root)
    assert rc == 0, (doc, err)
    assert doc["mode"] == "tls"
    assert doc["capabilities"]["before_tls"] is None
    assert doc["capabilities"]["after_tls"]["auth"] is True


def test_smtpgate_auth_and_message(server, pki):
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                         "--user", USER, "--password-stdin", "--from", USER,
                         "--to", "bob@example.test", stdin=PASSWORD + "\n")
    assert rc == 0, (doc, err)
    assert {a["mechanism"]: a["result"] for a in doc["auth"]} == {"PLAIN": "ok", "LOGIN": "ok"}
    assert doc["message"]["accepted"] is True
    # the secret never appears; the AUTH payload is redacted
    text = "\n".join(e["text"] for e in doc["transcript"])
    assert PASSWORD not in text
    assert "AUTH PLAIN <redacted>" in text
    assert "<redacted>" in text  # LOGIN's answers too
    msgs = server.queued()
    assert len(msgs) == 1
    assert msgs[0]["recipients"] == ["bob@example.test"]


def test_smtpgate_auth_from_environment(server, pki):
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                         env={"SMTPACCOUNT": USER, "SMTPPASSWORD": PASSWORD,
                              "SMTPAUTHMETHOD": "login"})
    assert rc == 0, (doc, err)
    assert [(a["mechanism"], a["result"]) for a in doc["auth"]] == [("LOGIN", "ok")]


def test_smtpgate_wrong_password(server, pki):
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                         "--user", USER, "--password-stdin", stdin="wrong\n")
    assert rc == 1, (doc, err)
    assert "auth-credentials-invalid" in ids(doc)
    f = [f for f in doc["findings"] if f["id"] == "auth-credentials-invalid"][0]
    assert "535" in f["evidence"]
    assert "full address" in f["fix"] and "app password" in f["fix"]
    # no further mechanism tried after a 535 (lockout counters)
    assert len(doc["auth"]) == 1


def test_smtpgate_no_auth_before_tls(server, pki):
    """--plain on a STARTTLS listener: no AUTH offered, MAIL needs STARTTLS."""
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--plain", "--user", USER,
                         "--from", USER, "--to", "bob@example.test",
                         env={"SMTPPASSWORD": PASSWORD})
    assert rc == 1, (doc, err)
    assert {"auth-not-offered", "encryption-required"} <= ids(doc)
    assert not [e for e in doc["transcript"] if e["text"].startswith("AUTH")]


def test_smtpgate_relay_denied(server):
    rc, doc, err = probe(f"127.0.0.1:{server.mx}", "--plain", "--from", "a@foreign.test",
                         "--to", "b@elsewhere.test")
    assert rc == 1, (doc, err)
    assert "relay-denied" in ids(doc)
    assert "starttls-not-offered" not in ids(doc)


def test_smtpgate_starttls_not_offered(server):
    rc, doc, err = probe(f"127.0.0.1:{server.mx}", "--starttls")
    assert rc == 1
    assert "starttls-not-offered" in ids(doc)


def test_smtpgate_name_mismatch(server, pki):
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                         "--sni", "wrong.example.test")
    assert rc == 1
    assert "cert-name-mismatch" in ids(doc)
    assert doc["tls"]["name_match"] is False


# --- certificates (openssl s_server, implicit TLS, no SMTP) ----------------------------

@pytest.mark.parametrize("case,expected", [
    ("expired", "cert-expired"),
    ("self_signed", "cert-self-signed"),
    ("chainless", "cert-chain-incomplete"),
    ("mismatch", "cert-name-mismatch"),
])
def test_s_server_certificates(zpki, s_server, case, expected):
    leaf = {
        "expired": lambda: zpki.leaf("expired", days=(-60, -1)),
        "self_signed": lambda: zpki.leaf("self", self_signed=True),
        "chainless": lambda: zpki.leaf("chainless", chain=False),
        "mismatch": lambda: zpki.leaf("mismatch", names=("other.example.test",)),
    }[case]()
    s = s_server(leaf)
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--cafile", zpki.root_pem,
                         "--timeout", "2")
    assert rc == 1, (doc, err)
    assert expected in ids(doc), doc["findings"]
    assert doc["tls"]["chain"], doc["tls"]
    # s_server speaks no SMTP: the greeting never comes
    assert "greeting-timeout" in ids(doc)


def test_s_server_unknown_root(zpki, s_server):
    s = s_server(zpki.leaf("unknown"))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--timeout", "2")  # system store
    assert rc == 1
    assert "cert-untrusted" in ids(doc)
    assert "cert-chain-incomplete" not in ids(doc)


def test_s_server_tls10_only(zpki, s_server):
    s = s_server(zpki.leaf("old"), extra=["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"])
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--cafile", zpki.root_pem,
                         "--timeout", "2")
    assert rc == 1, (doc, err)
    assert "tls-version-too-old" in ids(doc), doc["findings"]
    assert doc["tls"]["version"] == "TLSv1"
    assert doc["tls"]["legacy_only"] is True


def test_tls_spoken_to_plaintext_port(script):
    """--tls (the "465" mode) against a plaintext SMTP server."""
    s = script(lambda c, srv: smtp_dialogue(c, srv))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--timeout", "3")
    assert rc == 1
    assert "tls-mode-mismatch" in ids(doc)
    f = [f for f in doc["findings"] if f["id"] == "tls-mode-mismatch"][0]
    assert "plaintext" in f["evidence"] and "220 zoo.test" in f["evidence"]


def test_plaintext_spoken_to_tls_port(zpki, s_server):
    s = s_server(zpki.leaf("implicit"))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--timeout", "2")
    assert rc == 1
    assert "tls-mode-mismatch" in ids(doc)
    assert "greeting-timeout" not in ids(doc)
    f = [f for f in doc["findings"] if f["id"] == "tls-mode-mismatch"][0]
    assert "--tls" in f["evidence"]


def test_tls_server_closing_after_greeting(zpki, script):
    """Implicit TLS, a greeting, then the server closes: the probe's next
    TLS write went to a closed socket and SIGPIPE killed it (no report)."""
    leaf = zpki.leaf("closer")
    ctx = tls_server_context(leaf.chain, leaf.key)

    def handler(c, srv):
        c.starttls(ctx)
        c.send("220 zoo.test ESMTP\r\n")
        c.sock.close()

    s = script(handler)
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--tls", "--timeout", "3",
                         "--cafile", zpki.root_pem)
    assert rc == 1, (rc, err)
    assert doc is not None and doc["banner"] == "220 zoo.test ESMTP", doc


def test_starttls_expired_certificate(zpki, script):
    leaf = zpki.leaf("st-expired", days=(-60, -2))
    ctx = tls_server_context(leaf.chain, leaf.key)
    s = script(lambda c, srv: smtp_dialogue(c, srv, tls_ctx=ctx))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem)
    assert rc == 1, (doc, err)
    assert "cert-expired" in ids(doc)
    assert doc["capabilities"]["after_tls"] is not None


def test_starttls_injection_discarded(zpki, script):
    leaf = zpki.leaf("inject")
    ctx = tls_server_context(leaf.chain, leaf.key)

    def handler(c, srv):
        c.send("220 zoo.test\r\n")
        c.readline()
        c.send("250-zoo.test\r\n250 STARTTLS\r\n")
        c.readline()
        # the 220 and an injected reply in one segment
        c.send("220 go\r\n250 injected\r\n")
        c.starttls(ctx)
        smtp_dialogue_after_tls(c)

    s = script(handler)
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--starttls", "--cafile", zpki.root_pem)
    assert "starttls-injection" in ids(doc), (doc, err)
    assert severity(doc, "starttls-injection") == "warning"


def smtp_dialogue_after_tls(c):
    while True:
        line = c.readline()
        verb = line.split(" ", 1)[0].upper()
        if verb == "EHLO":
            c.send("250-zoo.test\r\n250 AUTH PLAIN\r\n")
        elif verb == "QUIT":
            c.send("221 bye\r\n")
            return
        else:
            c.send("502 no\r\n")


# --- AUTH behaviours ------------------------------------------------------------------------

def test_no_auth_offered(script):
    s = script(lambda c, srv: smtp_dialogue(c, srv))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--user", "u@zoo.test",
                         env={"SMTPPASSWORD": "pw"})
    assert rc == 1
    assert "auth-not-offered" in ids(doc)
    assert severity(doc, "auth-not-offered") == "error"


def test_aiosmtpd_no_auth(tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    port = free_port()
    ctl = Controller(Sink(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        rc, doc, err = probe(f"127.0.0.1:{port}", "--plain", "--user", "u@zoo.test",
                             "--from", "a@zoo.test", "--to", "b@zoo.test",
                             env={"SMTPPASSWORD": "pw"})
    finally:
        ctl.stop()
    assert rc == 1
    assert "auth-not-offered" in ids(doc)
    assert doc["message"]["accepted"] is True


def test_auth_454_then_235(script):
    tries = []

    def auth(c, line):
        tries.append(line)
        c.send("454 4.7.0 Temporary authentication failure\r\n" if len(tries) == 1
               else "235 2.7.0 Authentication successful\r\n")

    s = script(lambda c, srv: smtp_dialogue(c, srv, ehlo=("AUTH PLAIN",), auth=auth))
    t0 = time.monotonic()
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--user", "u@zoo.test",
                         env={"SMTPPASSWORD": "secret-pw"})
    assert rc == 0, (doc, err)
    assert len(tries) == 2
    assert [a["result"] for a in doc["auth"]] == ["ok"]
    assert "auth-offered-cleartext" in ids(doc)  # a warning: exit 0
    assert any("retrying" in e["text"] for e in doc["transcript"])
    assert time.monotonic() - t0 < 20


def test_auth_454_forever_is_bounded(script):
    tries = []

    def auth(c, line):
        tries.append(line)
        c.send("454 4.7.0 Temporary authentication failure\r\n")

    s = script(lambda c, srv: smtp_dialogue(c, srv, ehlo=("AUTH PLAIN",), auth=auth))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--user", "u", env={"SMTPPASSWORD": "p"})
    assert rc == 1
    assert "auth-temporary-failure" in ids(doc)
    assert len(tries) == 3


@pytest.mark.parametrize("reply,expected", [
    ("534 5.7.9 Authentication mechanism is too weak", "auth-mechanism-too-weak"),
    ("538 5.7.11 Encryption required for requested authentication mechanism",
     "encryption-required"),
    ("432 4.7.12 A password transition is needed", "password-transition-needed"),
    ("504 5.5.4 Unrecognized authentication type", "auth-mechanism-unsupported"),
    ("500 5.5.2 Syntax error", "command-syntax-error"),
    ("503 5.5.1 Bad sequence of commands", "bad-sequence"),
])
def test_auth_replies(script, reply, expected):
    s = script(lambda c, srv: smtp_dialogue(c, srv, ehlo=("AUTH PLAIN LOGIN",),
                                            auth=lambda c2, l: c2.send(reply + "\r\n")))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--user", "u", "--auth", "PLAIN",
                         env={"SMTPPASSWORD": "p"})
    assert rc == 1
    assert expected in ids(doc), doc["findings"]


def test_xoauth2_error_challenge(script):
    seen = []

    def auth(c, line):
        seen.append(line)
        c.send("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=\r\n")
        seen.append(c.readline())
        c.send("535 5.7.8 Username and Password not accepted\r\n")

    s = script(lambda c, srv: smtp_dialogue(c, srv, ehlo=("AUTH XOAUTH2",), auth=auth))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--user", "u@zoo.test",
                         "--auth", "xoauth2", env={"SMTPPASSWORD": "ya29.token"})
    assert rc == 1
    assert "auth-credentials-invalid" in ids(doc)
    assert seen[0].startswith("AUTH XOAUTH2 ")
    assert seen[1] == ""  # the empty answer to the error challenge
    assert any('"status":"401"' in e["text"] for e in doc["transcript"])


@pytest.mark.parametrize("where,reply,expected", [
    ("mail", "553 5.7.1 Sender address rejected: not owned by user", "sender-rejected"),
    ("mail", "530 5.7.0 Authentication required", "auth-required"),
    ("data", "552 5.3.4 Message size exceeds fixed limit", "message-too-large"),
])
def test_transaction_replies(script, where, reply, expected):
    kw = {"on_mail": reply} if where == "mail" else {"on_data": reply}
    s = script(lambda c, srv: smtp_dialogue(c, srv, **kw))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain", "--from", "a@zoo.test",
                         "--to", "b@zoo.test")
    assert rc == 1
    assert expected in ids(doc)


def test_421_retried_with_backoff(script):
    s = script(lambda c, srv: c.send("421 4.7.0 Too many connections\r\n"))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain")
    assert rc == 1
    assert "service-unavailable" in ids(doc)
    assert s.conns == 3


def test_554_greeting_not_retried(script):
    s = script(lambda c, srv: c.send("554 5.7.1 go away\r\n"))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain")
    assert rc == 1
    assert "service-unavailable" in ids(doc)
    assert s.conns == 1


# --- the network ---------------------------------------------------------------------------

def test_connection_refused():
    port = free_port()  # nothing listens there
    rc, doc, err = probe(f"127.0.0.1:{port}")
    assert rc == 1
    assert ids(doc) == {"connection-refused"}


def test_never_greets(script):
    s = script(lambda c, srv: time.sleep(8))
    t0 = time.monotonic()
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--timeout", "2")
    assert rc == 1
    assert "greeting-timeout" in ids(doc)
    assert time.monotonic() - t0 < 10


# --- hostile servers -----------------------------------------------------------------------

def _endless(c, srv, unit, head="220-zoo.test\r\n"):
    c.send(head)
    try:
        while not srv.stopping.is_set():
            c.send(unit)
    except OSError:
        pass


def test_endless_multiline_reply(script):
    s = script(lambda c, srv: _endless(c, srv, b"220-more and more\r\n" * 100))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--timeout", "5")
    assert rc == 1
    assert "reply-malformed" in ids(doc)


def test_banner_never_ends(script):
    s = script(lambda c, srv: _endless(c, srv, b"x" * 1000, head="220 "))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--timeout", "5")
    assert rc == 1
    f = [f for f in doc["findings"] if f["id"] == "reply-malformed"][0]
    assert "4096" in f["evidence"]


def test_nul_bytes_in_replies(script):
    s = script(lambda c, srv: smtp_dialogue(c, srv, greeting="220 zoo\x00.test ESMTP"))
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--plain")
    assert rc == 0, (doc, err)
    assert severity(doc, "reply-irregular") == "warning"
    assert "\\x00" in doc["banner"]


def test_slow_drip(script):
    def drip(c, srv):
        for ch in b"220 zoo.test slowly dripping greeting that takes a long time\r\n":
            if srv.stopping.is_set():
                return
            c.send(bytes([ch]))
            time.sleep(0.2)

    s = script(drip)
    t0 = time.monotonic()
    rc, doc, err = probe(f"127.0.0.1:{s.port}", "--timeout", "2")
    assert rc == 1
    f = [f for f in doc["findings"] if f["id"] == "greeting-timeout"][0]
    assert "incomplete" in f["evidence"]
    assert time.monotonic() - t0 < 10


def test_usage_errors():
    assert probe()[0] == 2
    assert probe("127.0.0.1:0")[0] == 2
    assert probe("127.0.0.1", "--tls", "--plain")[0] == 2
    assert probe("127.0.0.1", "--auth", "NOPE")[0] == 2
    assert probe("127.0.0.1", "--user", "u")[0] == 2  # no password
    assert probe("127.0.0.1", "--timeout", "0")[0] == 2


def test_host_not_utf8_keeps_report_and_finding():
    # the name is the command line's bytes: the --json report used to abort
    # (json_pack refused the host) and drop a finding whose evidence held it
    r = subprocess.run([SMTPGATE, "probe", b"\xffbad.invalid", "--json", "--timeout", "2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 1, r
    doc = json.loads(r.stdout)
    assert doc["host"] == "\\xffbad.invalid"
    f = [f for f in doc["findings"] if f["id"] == "name-unresolvable"]
    assert f and "\\xffbad.invalid" in f[0]["evidence"], doc


# --- Postfix misconfigured: AUTH offered in cleartext ----------------------------------------

POSTFIX_SH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "postfix.sh"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("postfix") or
                    not shutil.which("dovecot"), reason="needs root, postfix and dovecot")
def test_postfix_auth_in_cleartext(tmp_path):
    """A private Postfix (bench/postfix.sh: own config dir, loopback port, Dovecot
    SASL) with smtpd_tls_auth_only = no and TLS optional: AUTH in cleartext is a
    finding; authentication (PLAIN and LOGIN) and a message by BDAT work; a wrong
    password is auth-credentials-invalid."""
    out = tmp_path / "out"
    out.mkdir()
    script = f"""
set -u
P="$0"
common="127.0.0.1:$BENCH_PORT --starttls --cafile $BENCH_CAFILE --sni $BENCH_SNI --json"
"$P" probe $common --user "$BENCH_USER" --password-stdin --from a@bench.test \\
    --to b@elsewhere.test <"$BENCH_PASSFILE" >{out}/good.json; echo $? >{out}/good.rc
echo wrong | "$P" probe $common --user "$BENCH_USER" --password-stdin \\
    >{out}/bad.json; echo $? >{out}/bad.rc
"""
    env = dict(os.environ, BENCH_POSTFIX_MAINCF="smtpd_tls_security_level = may\n"
               "smtpd_tls_auth_only = no\n")
    for k in ("SMTPACCOUNT", "SMTPPASSWORD", "SMTPAUTHMETHOD", "SMTPFROMADDRESS"):
        env.pop(k, None)
    p = subprocess.Popen(["sh", str(POSTFIX_SH), "sh", "-c", script, SMTPGATE], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        log, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)  # the script's trap stops Postfix and Dovecot
        p.communicate(timeout=60)
        raise
    assert p.returncode == 0, log.decode(errors="replace")
    good = json.loads((out / "good.json").read_text())
    assert (out / "good.rc").read_text().strip() == "0", good["findings"]
    assert ids(good) == {"auth-offered-cleartext"}
    assert good["capabilities"]["before_tls"]["auth"] is True
    assert {a["mechanism"]: a["result"] for a in good["auth"]} == {"PLAIN": "ok", "LOGIN": "ok"}
    assert good["message"]["accepted"] is True
    assert any(e["text"].startswith("BDAT ") for e in good["transcript"])
    bad = json.loads((out / "bad.json").read_text())
    assert (out / "bad.rc").read_text().strip() == "1"
    assert "auth-credentials-invalid" in ids(bad)


# --- --resolver: a local DNS server (unbound with local data) --------------------------------

@pytest.mark.skipif(not shutil.which("unbound"), reason="needs unbound")
def test_resolver(tmp_path, script):
    s = script(lambda c, srv: smtp_dialogue(c, srv))
    dns_port = free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(f"""server:
    interface: 127.0.0.1
    port: {dns_port}
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{tmp_path}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    local-zone: "zoo.test." static
    local-data: "mail.zoo.test. A 127.0.0.1"
""")
    proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # unbound answers on UDP; wait for its TCP port
            try:
                socket.create_connection(("127.0.0.1", dns_port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        rc, doc, err = probe(f"mail.zoo.test:{s.port}", "--plain", "--resolver",
                             f"127.0.0.1:{dns_port}")
        assert rc == 0, (doc, err)
        assert doc["banner"].startswith("220 zoo.test")
        rc, doc, err = probe(f"nothere.zoo.test:{s.port}", "--plain", "--resolver",
                             f"127.0.0.1:{dns_port}")
        assert rc == 1
        assert ids(doc) == {"name-unresolvable"}
    finally:
        proc.terminate()
        proc.wait(10)


# --- SCRAM over the wire (against smtpgate's own SCRAM) -------------------------------

@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
                                  "SCRAM-SHA-1"])
def test_smtpgate_scram(make_server, pki, mech):
    server = make_server(mechanisms="SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS "
                                    "SCRAM-SHA-1 PLAIN LOGIN").start()
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                         "--user", USER, "--password-stdin", "--auth", mech,
                         stdin=PASSWORD + "\n")
    assert rc == 0, (doc, err)
    assert [(a["mechanism"], a["result"]) for a in doc["auth"]] == [(mech, "ok")]
    ok = [e for e in server.events("auth") if e.get("result") == "ok"]
    assert [e["mechanism"] for e in ok] == [mech]
    assert PASSWORD not in "\n".join(e["text"] for e in doc["transcript"])
    # a wrong password fails at the proof like any other: 535, one finding
    rc, doc, err = probe(f"127.0.0.1:{server.submission}", "--cafile", pki.root,
                         "--user", USER, "--password-stdin", "--auth", mech,
                         stdin="wrong\n")
    assert rc == 1 and "auth-credentials-invalid" in ids(doc), (doc, err)

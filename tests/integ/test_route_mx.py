"""Delivery by MX (`route = mx`): route_mx against a local nsd and aiosmtpd sinks.

An nsd on 127.0.0.1:<free port> serves the test zones (two of them signed
with ldns-signzone, their keys given as the DNSSEC trust anchor); an
aiosmtpd sink with STARTTLS listens on 127.0.0.1:<mx port> (MX delivery
uses port 25; the route's mx_port override points it at the sink), and
127.0.0.2:<mx port> refuses connections. MTA-STS policies are served by a
small HTTPS server with a test CA on 127.0.0.1:<sts port>.

Most cases drive the code through the driver mode of the unit test binary
(build-dir/test_route_mx deliver DOMAIN ...), which resolves, opens a
session with route_mx_open and sends one message. The MTA-STS cache across
a restart (test_mta_sts_policy_survives_restart) runs the real server, with
nsd instances and a policy server of its own.
"""
import base64
import datetime
import hashlib
import http.server
import json
import os
import shutil
import smtplib
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, SMTPGATE, USER, free_port

DRIVER = Path(SMTPGATE).parent / "test_route_mx"

pytestmark = [
    pytest.mark.skipif(shutil.which("nsd") is None, reason="nsd not installed"),
    pytest.mark.skipif(not DRIVER.exists(), reason="test_route_mx not built (SMTPGATE_TESTS)"),
]

SOA = "@ IN SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 300\n@ IN NS ns.{z}.\nns IN A 127.0.0.1\n"

MX_NAMES = ["mx1.twomx.test", "mx2.twomx.test", "mx.dane.test", "mx.danebad.test",
            "mx.stsfail.test", "mx.stsenforce.test", "mx.ststesting.test",
            "mx.stsmismatch.test", "implicit.test", "mx.stsrestart.test",
            "relay.stsrestart.test"]
STS_DOMAINS = ["stsfail.test", "stsenforce.test", "ststesting.test", "stsmismatch.test",
               "stsrestart.test"]


def _pki(d):
    """A test CA, the sink's certificate (every MX name) and the MTA-STS
    web server's (every mta-sts. name); returns paths and the sink's
    SubjectPublicKeyInfo SHA-256 (for TLSA 3 1 1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "route_mx test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(names, stem):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{stem}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()

    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    sink_hash = leaf(MX_NAMES, "sink")
    leaf([f"mta-sts.{z}" for z in STS_DOMAINS], "web")
    return sink_hash


def _zones(sink_hash, mx_port):
    wrong = "00" * 32
    sts = """@ IN MX 10 mx
mx IN A 127.0.0.1
mta-sts IN A 127.0.0.1
_mta-sts IN TXT "v=STSv1; id={id};"
"""
    zones = {
        "twomx.test": "@ IN MX 10 mx1\n@ IN MX 20 mx2\nmx1 IN A 127.0.0.2\nmx2 IN A 127.0.0.1\n",
        "implicit.test": "@ IN A 127.0.0.1\n",
        "nullmx.test": "@ IN MX 0 .\n",
        "stsfail.test": sts.replace("mta-sts IN A 127.0.0.1\n", "mta-sts IN A 127.0.0.2\n"),
        "stsenforce.test": sts,
        "ststesting.test": sts,
        "stsmismatch.test": sts,
    }
    signed = {
        "dane.test": f"@ IN MX 10 mx\nmx IN A 127.0.0.1\n_{mx_port}._tcp.mx IN TLSA 3 1 1 {sink_hash}\n",
        "danebad.test": f"@ IN MX 10 mx\nmx IN A 127.0.0.1\n_{mx_port}._tcp.mx IN TLSA 3 1 1 {wrong}\n",
    }
    return zones, signed


def _sign(d, name, text):
    zf = d / f"{name}.zone"
    zf.write_text(text)
    key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name], cwd=d,
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    subprocess.run(["ldns-signzone", str(zf), key], cwd=d, check=True, capture_output=True,
                   timeout=60)
    return f"{name}.zone.signed", (d / f"{key}.key").read_text()


class _Policies(http.server.BaseHTTPRequestHandler):
    policies = {}

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        body = self.policies.get(host)
        if body is None or self.path != "/.well-known/mta-sts.txt":
            self.send_response(404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _policy(mode, mx):
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from aiosmtpd.controller import Controller

    d = tmp_path_factory.mktemp("route_mx")
    dns_port, mx_port, sts_port = free_port(), free_port(), free_port()
    sink_hash = _pki(d)
    zones, signed = _zones(sink_hash, mx_port)
    conf = ["server:", f"  ip-address: 127.0.0.1@{dns_port}", f"  zonesdir: \"{d}\"",
            f"  pidfile: \"{d}/nsd.pid\"", "  username: \"\"", "  database: \"\"",
            "  chroot: \"\"", f"  zonelistfile: \"{d}/zone.list\"",
            f"  xfrdfile: \"{d}/xfrd.state\"", f"  logfile: \"{d}/nsd.log\"",
            "  server-count: 1", "remote-control:", "  control-enable: no"]
    for name, body in zones.items():
        (d / f"{name}.zone").write_text(f"$ORIGIN {name}.\n$TTL 300\n" + SOA.format(z=name)
                                        + body.replace("{id}", "20240101"))
        conf += ["zone:", f"  name: {name}", f"  zonefile: {name}.zone"]
    anchors = []
    for name, body in signed.items():
        zf, dnskey = _sign(d, name, f"$ORIGIN {name}.\n$TTL 300\n" + SOA.format(z=name) + body)
        anchors.append(dnskey)
        conf += ["zone:", f"  name: {name}", f"  zonefile: {zf}"]
    (d / "anchors.key").write_text("".join(anchors))
    (d / "nsd.conf").write_text("\n".join(conf) + "\n")

    # the sink: STARTTLS with a certificate for every MX name
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append({"rcpt": list(envelope.rcpt_tos), "data": envelope.content,
                             "tls": session.ssl is not None})
            return "250 2.0.0 OK"

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(d / "sink.pem", d / "sink.key")
    sink = Controller(Handler(), hostname="127.0.0.1", port=mx_port, tls_context=tls,
                      require_starttls=False)
    sink.start()

    # the MTA-STS web server
    _Policies.policies = {
        "mta-sts.stsenforce.test": _policy("enforce", "*.stsenforce.test"),
        "mta-sts.ststesting.test": _policy("testing", "mx.elsewhere.test"),
        "mta-sts.stsmismatch.test": _policy("enforce", "mx.elsewhere.test"),
    }
    web = http.server.ThreadingHTTPServer(("127.0.0.1", sts_port), _Policies)
    wctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    wctx.load_cert_chain(d / "web.pem", d / "web.key")
    web.socket = wctx.wrap_socket(web.socket, server_side=True)
    threading.Thread(target=web.serve_forever, daemon=True).start()

    proc = subprocess.Popen(["nsd", "-d", "-c", str(d / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError("nsd exited: " + (d / "nsd.log").read_text())
            r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(dns_port),
                                "@127.0.0.1", "twomx.test", "MX"],
                               capture_output=True, text=True, timeout=10)
            if "mx1.twomx.test" in r.stdout:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("nsd did not answer: " + (d / "nsd.log").read_text())
            time.sleep(0.1)
        yield {"dns": dns_port, "mx": mx_port, "sts": sts_port, "dir": d,
               "received": received}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        sink.stop()
        web.shutdown()


def deliver(lab, domain, to=None):
    args = [str(DRIVER), "deliver", domain, "--resolver", f"127.0.0.1:{lab['dns']}",
            "--anchor", str(lab["dir"] / "anchors.key"), "--port", str(lab["mx"]),
            "--ca", str(lab["dir"] / "ca.pem"), "--sts-port", str(lab["sts"]),
            "--timeout", "5000"]
    if to:
        args += ["--to", to]
    before = len(lab["received"])
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1, 2), r.stderr
    out = json.loads(r.stdout)
    out["exit"] = r.returncode
    time.sleep(0.05)
    out["got"] = lab["received"][before:]
    return out


def test_second_mx_when_first_refuses(lab):
    r = deliver(lab, "twomx.test", "a@twomx.test")
    assert r["exit"] == 0, r
    assert [h["name"] for h in r["hosts"]] == ["mx1.twomx.test", "mx2.twomx.test"]
    assert r["host"] == "mx2.twomx.test" and r["addr"] == "127.0.0.1"
    assert r["tls"] == "opportunistic" and r["tls_active"] is True and r["verified"] is False
    assert len(r["got"]) == 1 and r["got"][0]["rcpt"] == ["a@twomx.test"]
    assert b"hello" in r["got"][0]["data"]


def test_implicit_mx(lab):
    r = deliver(lab, "implicit.test")
    assert r["exit"] == 0, r
    assert r["implicit_mx"] is True
    assert r["hosts"][0]["name"] == "implicit.test"
    assert len(r["got"]) == 1


def test_null_mx_fails_for_good(lab):
    r = deliver(lab, "nullmx.test")
    assert r["exit"] == 2, r
    assert r["result"] == "failed"
    assert "does not accept mail (null MX, RFC 7505)" in r["reason"]
    assert r["got"] == []


def test_nxdomain_fails_for_good(lab):
    r = deliver(lab, "absent.twomx.test")
    assert r["exit"] == 2, r
    assert "NXDOMAIN" in r["reason"]


def test_dane_verified(lab):
    r = deliver(lab, "dane.test")
    assert r["exit"] == 0, r
    assert r["mx_security"] == "secure"
    assert r["hosts"][0]["tls"] == "dane" and r["hosts"][0]["ntlsa"] == 1
    assert r["tls_active"] is True and r["verified"] is True
    assert r["dane_match"] == "3 1 1 at depth 0"
    assert len(r["got"]) == 1 and r["got"][0]["tls"] is True


def test_dane_mismatch_deferred(lab):
    r = deliver(lab, "danebad.test")
    assert r["exit"] == 1, r
    assert r["result"] == "deferred" and r["transient"] is True
    assert r["hosts"][0]["tls"] == "dane"
    assert "mx.danebad.test[127.0.0.1]: STARTTLS (DANE)" in r["reason"]
    assert "certificate verification failed" in r["reason"]
    assert r["got"] == []


def test_mta_sts_unfetchable_is_opportunistic(lab):
    # RFC 8461 5: a published policy that cannot be fetched (and none
    # cached) is no policy: delivered with opportunistic TLS, and noted
    r = deliver(lab, "stsfail.test")
    assert r["exit"] == 0, r
    assert r["sts_mode"] == "none"
    assert "delivering without MTA-STS" in r["sts_note"]
    assert r["tls"] == "opportunistic"
    assert len(r["got"]) == 1


def test_mta_sts_enforce_verified(lab):
    r = deliver(lab, "stsenforce.test")
    assert r["exit"] == 0, r
    assert r["sts_mode"] == "enforce"
    assert r["tls"] == "mta-sts" and r["verified"] is True
    assert len(r["got"]) == 1 and r["got"][0]["tls"] is True


def test_mta_sts_testing_mismatch_still_delivers(lab):
    r = deliver(lab, "ststesting.test")
    assert r["exit"] == 0, r
    assert r["sts_mode"] == "testing"
    assert "matches no mx pattern" in r["hosts"][0]["reason"]
    assert len(r["got"]) == 1


def test_mta_sts_enforce_mismatch_not_delivered(lab):
    r = deliver(lab, "stsmismatch.test")
    assert r["exit"] == 1, r
    assert r["result"] == "deferred"
    assert "mx.stsmismatch.test: matches no mx pattern of the enforced MTA-STS policy" in r["reason"]
    assert r["got"] == []


# --- the MTA-STS cache across a restart of the real server (RFC 8461 5.1, 10.2) -------

def _nsd(d, zones, port):
    """An nsd on 127.0.0.1:port serving zones ({name: records}) from d; the
    process, once it answers."""
    d.mkdir()
    conf = ["server:", f"  ip-address: 127.0.0.1@{port}", f"  zonesdir: \"{d}\"",
            f"  pidfile: \"{d}/nsd.pid\"", "  username: \"\"", "  database: \"\"",
            "  chroot: \"\"", f"  zonelistfile: \"{d}/zone.list\"",
            f"  xfrdfile: \"{d}/xfrd.state\"", f"  logfile: \"{d}/nsd.log\"",
            "  server-count: 1", "remote-control:", "  control-enable: no"]
    for name, body in zones.items():
        (d / f"{name}.zone").write_text(f"$ORIGIN {name}.\n$TTL 300\n" + SOA.format(z=name)
                                        + body)
        conf += ["zone:", f"  name: {name}", f"  zonefile: {name}.zone"]
    (d / "nsd.conf").write_text("\n".join(conf) + "\n")
    proc = subprocess.Popen(["nsd", "-d", "-c", str(d / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    name = next(iter(zones))
    while True:
        if proc.poll() is not None:
            raise RuntimeError("nsd exited: " + (d / "nsd.log").read_text())
        r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(port),
                            "@127.0.0.1", name, "SOA"], capture_output=True, text=True,
                           timeout=10)
        if r.stdout.strip():
            return proc
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("nsd did not answer: " + (d / "nsd.log").read_text())
        time.sleep(0.1)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _submit(server, rcpt, marker):
    ctx = ssl.create_default_context(cafile=str(server.pki.root))
    msg = (f"From: <{USER}>\r\nTo: <{rcpt}>\r\nSubject: {marker}\r\n"
           f"Message-ID: <{marker}@client.example.test>\r\n\r\nhello {marker}\r\n").encode()
    with smtplib.SMTP("127.0.0.1", server.submission, timeout=15) as c:
        c.starttls(context=ctx)
        c.login(USER, PASSWORD)
        c.sendmail(USER, [rcpt], msg)


def _set_resolver(server, port):
    text = server.conf.read_text()
    lines = [f"resolver = 127.0.0.1:{port}" if ln.startswith("resolver = ") else ln
             for ln in text.splitlines()]
    server.conf.write_text("\n".join(lines) + "\n")


def test_mta_sts_policy_survives_restart(lab, make_server, tmp_path):
    """An enforce policy is fetched and delivered under; the server restarts;
    then an attacker removes the TXT record, blocks the policy server and
    points the MX at a host the policy does not list: the mail must stay
    queued (deferred), not go out with opportunistic TLS. Without the policy
    file in the spool (the control at the end) it does go out."""
    rcpt = "bob@stsrestart.test"
    good = {"stsrestart.test": "@ IN MX 10 mx\nmx IN A 127.0.0.1\nmta-sts IN A 127.0.0.1\n"
                               "_mta-sts IN TXT \"v=STSv1; id=20240101;\"\n"}
    attack = {"stsrestart.test": "@ IN MX 10 relay\nrelay IN A 127.0.0.1\n"
                                 "mta-sts IN A 127.0.0.1\n"}
    dns_good, dns_attack, sts_port = free_port(), free_port(), free_port()

    class Policy(_Policies):
        policies = {"mta-sts.stsrestart.test": _policy("enforce", "mx.stsrestart.test")}

    web = http.server.ThreadingHTTPServer(("127.0.0.1", sts_port), Policy)
    wctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    wctx.load_cert_chain(lab["dir"] / "web.pem", lab["dir"] / "web.key")
    web.socket = wctx.wrap_socket(web.socket, server_side=True)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    web_up = True
    procs = [_nsd(tmp_path / "dns-good", good, dns_good),
             _nsd(tmp_path / "dns-attack", attack, dns_attack)]
    try:
        s = make_server(extra=f"""
[relay]
route = mx
resolver = 127.0.0.1:{dns_good}
dnssec_anchor = none
ca = {lab['dir'] / 'ca.pem'}
mx_port = {lab['mx']}
mta_sts_port = {sts_port}
retry_min = 1m
timeout = 10s
""").start()
        policy_file = s.spool / "mta-sts" / "stsrestart.test"

        # 1. the policy is fetched; delivered with a verified certificate
        before = len(lab["received"])
        _submit(s, rcpt, "sts-restart-1")
        qid = s.wait_event("accepted")["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=60)
        assert ev["result"] == "sent", ev
        assert ev["relay"] == "mx.stsrestart.test[127.0.0.1]", ev
        got = lab["received"][before:]
        assert len(got) == 1 and got[0]["tls"] is True, got
        assert policy_file.exists()
        assert policy_file.stat().st_mode & 0o777 == 0o600
        assert policy_file.parent.stat().st_mode & 0o777 == 0o700
        doc = json.loads(policy_file.read_text())
        assert doc["smtpgate-mta-sts"] == 1 and doc["domain"] == "stsrestart.test"
        assert doc["id"] == "20240101" and "mode: enforce" in doc["policy"]
        assert abs(doc["fetched"] - time.time()) < 120

        # 2. restart; the attack: no TXT, the policy server gone, another MX
        assert s.stop() == 0, s.stderr_text()
        web.shutdown()
        web.server_close()
        web_up = False
        _set_resolver(s, dns_attack)
        s.start()
        before = len(lab["received"])
        _submit(s, rcpt, "sts-restart-2")
        qid = [e for e in s.events("accepted")][-1]["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid, timeout=60)
        assert ev["result"] == "deferred", ev
        assert "relay.stsrestart.test: matches no mx pattern of the enforced MTA-STS policy" \
            in ev["reason"], ev
        # the log says which rules applied and why
        note = s.wait_event("mta_sts", lambda r: r["domain"] == "stsrestart.test")
        assert "the cached policy holds until it expires" in note["note"], note
        assert note["policy_id"] == "20240101" and note["cached"] is True
        time.sleep(0.5)
        assert lab["received"][before:] == []
        assert qid in [m["id"] for m in s.queued()]

        # 3. the control: without the policy file the same attack succeeds
        assert s.stop() == 0, s.stderr_text()
        policy_file.unlink()
        s.start()
        _submit(s, rcpt, "sts-restart-3")
        qid3 = [e for e in s.events("accepted")][-1]["queue_id"]
        ev = s.wait_event("delivery", lambda r: r["queue_id"] == qid3, timeout=60)
        assert ev["result"] == "sent", ev
        assert ev["relay"] == "relay.stsrestart.test[127.0.0.1]", ev
        assert not policy_file.exists()
    finally:
        for p in procs:
            _stop(p)
        if web_up:
            web.shutdown()
            web.server_close()

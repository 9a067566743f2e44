"""DKIM signing of outgoing mail (RFC 6376, RFC 8463), verified by a real
verifier: dkimpy (Debian python3-dkim; Ed25519 through python3-nacl).

Keys are made with `openssl genpkey` per test; the verifier's DNS lookup
returns the TXT record the documentation tells an admin to publish."""

import base64
import json
import os
import re
import subprocess
import time

import dkim
import pytest

from conftest import SMTPGATE, wait_for
from test_delivery import SENDER, Sink, relay_conf, submit


def genkey(d, name, kind):
    """A private key file (mode 0600) and its DKIM TXT record."""
    key = d / f"{name}.pem"
    args = ["openssl", "genpkey", "-out", str(key)]
    args += ["-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{kind}"] if isinstance(
        kind, int) else ["-algorithm", "ED25519"]
    subprocess.run(args, check=True, capture_output=True)
    os.chmod(key, 0o600)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    if isinstance(kind, int):
        txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    else:
        # RFC 8463 4.2: the raw 32-byte public key (the end of the SPKI)
        txt = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:])
    return key, txt


def dnsfunc(records):
    def lookup(name, timeout=5):
        return records.get(name.decode() if isinstance(name, bytes) else name)
    return lookup


def verify(data, records):
    return dkim.verify(data, dnsfunc=dnsfunc(records))


def dkim_conf(domain, selector, key, headers=None):
    return f"[dkim {domain}]\nselector = {selector}\nkey = {key}\n" + (
        f"headers = {headers}\n" if headers else "")


def msg(marker, extra=""):
    return (f"From: Alice <{SENDER}>\r\nTo: <bob@example.net>\r\n"
            f"Subject: dkim {marker}\r\n{extra}"
            f"Message-ID: <{marker}@client.example.test>\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n"
            f"hello {marker}  with  spaces \r\n.leading dot\r\n\r\n\r\n").encode()


def run(*args):
    return subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def sink(pki):
    s = Sink(pki)
    yield s
    s.stop()


def deliver_one(make_server, pki, sink, extra, message, n=1):
    s = make_server(extra=relay_conf(sink.port, pki) + extra).start()
    submit(s, ["bob@example.net"], message)
    wait_for(lambda: len(sink.messages) >= n, timeout=20, what="delivery to the sink")
    return s, sink.messages[-1][3]


@pytest.mark.parametrize("kind,alg", [(2048, b"rsa-sha256"), ("ed25519", b"ed25519-sha256")])
def test_signed_message_verifies(make_server, pki, sink, tmp_path, kind, alg):
    key, txt = genkey(tmp_path, "k", kind)
    records = {"sel1._domainkey.example.test.": txt}
    s, data = deliver_one(make_server, pki, sink, dkim_conf("Example.Test", "sel1", key),
                          msg("v1"))
    assert data.startswith(b"DKIM-Signature: v=1; a=" + alg + b"; c=relaxed/relaxed;")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n")[:8]), head
    assert data.count(b"DKIM-Signature:") == 1
    sig = data.split(b"\r\nReceived:", 1)[0]
    assert b"d=example.test;" in sig and b"s=sel1;" in sig
    t = int(re.search(rb"\st=(\d+);", sig).group(1))
    assert abs(t - time.time()) < 60
    # h=: the headers present, From over-signed; no l=
    hval = sig.split(b"h=", 1)[1].split(b";", 1)[0].replace(b"\r\n\t", b"")
    assert hval.split(b":") == [b"from", b"from", b"to", b"subject", b"date",
                                b"message-id"], hval
    assert b" l=" not in sig
    assert verify(data, records), data
    # the test can fail: a changed body, a changed Subject, an added From,
    # another key in DNS
    assert not verify(data.replace(b"hello v1", b"hello v2"), records)
    assert not verify(data.replace(b"Subject: dkim v1", b"Subject: dkim v2"), records)
    assert not verify(data.replace(b"\r\n\r\n", b"\r\nFrom: <evil@example.test>\r\n\r\n", 1),
                      records)
    _, other = genkey(tmp_path, "other", kind)
    assert not verify(data, {"sel1._domainkey.example.test.": other})
    # relaxed canonicalization: white space changes in transit still verify
    assert verify(data.replace(b"Subject: dkim v1", b"Subject:   dkim    v1 "), records)
    s.stop()
    assert b"PRIVATE" not in s.log.read_bytes()


def test_multiple_received_and_folded_subject_verify(make_server, pki, sink, tmp_path):
    key, txt = genkey(tmp_path, "k", 2048)
    records = {"s2._domainkey.example.test.": txt}
    extra = ("Received: from a.example by b.example;\r\n\tThu, 1 Jan 2026 00:00:00 +0000\r\n"
             "Received: from c.example by a.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n")
    m = msg("v2", extra).replace(b"Subject: dkim v2\r\n",
                                 b"Subject: a long subject\r\n  folded \t over\r\n\tthree lines\r\n")
    _, data = deliver_one(make_server, pki, sink,
                          dkim_conf("example.test", "s2", key, "from subject received to"), m)
    sig = data.split(b"\r\nReceived:", 1)[0]
    hval = sig.split(b"h=", 1)[1].split(b";", 1)[0].replace(b"\r\n\t", b"")
    # three Received: (ours and the two submitted), each signed bottom-up
    assert hval == b"from:from:subject:received:received:received:to", hval
    assert verify(data, records)
    # reordering two signed instances of the same name breaks it
    i = data.index(b"Received: from a.example")
    j = data.index(b"Received: from c.example")
    ra, rc = data[i:j], data[j:data.index(b"Message-ID:")]
    swapped = data[:i] + rc + ra + data[j + len(rc):]
    assert len(swapped) == len(data) and swapped != data
    assert not verify(swapped, records)


def test_other_from_domain_is_not_signed(make_server, pki, sink, tmp_path):
    key, _ = genkey(tmp_path, "k", 2048)
    _, data = deliver_one(make_server, pki, sink, dkim_conf("other.example", "s", key),
                          msg("v3"))
    assert b"DKIM-Signature" not in data


def test_empty_body_verifies(make_server, pki, sink, tmp_path):
    key, txt = genkey(tmp_path, "k", "ed25519")
    m = (f"From: <{SENDER}>\r\nTo: <bob@example.net>\r\nSubject: empty\r\n\r\n").encode()
    _, data = deliver_one(make_server, pki, sink, dkim_conf("example.test", "e", key), m)
    assert b"DKIM-Signature" in data
    assert verify(data, {"e._domainkey.example.test.": txt})


def test_dsn_from_mailer_daemon_is_signed(make_server, pki, tmp_path):
    key, txt = genkey(tmp_path, "k", 2048)
    sink = Sink(pki, script=[(550, "5.1.1 mailbox unavailable")])
    try:
        s = make_server(extra=relay_conf(sink.port, pki) +
                        dkim_conf("mail.example.test", "dsn", key)).start()
        submit(s, ["nobody@example.net"], msg("v4"))
        wait_for(lambda: sink.messages, timeout=20, what="the DSN")
        _, mail_from, _, data = sink.messages[0]
        assert mail_from in ("", "<>")
        assert b"d=mail.example.test;" in data
        assert verify(data, {"dsn._domainkey.mail.example.test.": txt})
    finally:
        sink.stop()


def test_retry_signs_once(make_server, pki, tmp_path):
    key, txt = genkey(tmp_path, "k", 2048)
    sink = Sink(pki, script=[(451, "4.3.0 try again later")])
    try:
        s = make_server(extra=relay_conf(sink.port, pki) +
                        dkim_conf("example.test", "r", key)).start()
        submit(s, ["bob@example.net"], msg("v5"))
        wait_for(lambda: sink.messages, timeout=20, what="delivery after a 451")
        data = sink.messages[0][3]
        assert len(sink.attempts) == 2
        assert data.count(b"DKIM-Signature:") == 1
        assert verify(data, {"r._domainkey.example.test.": txt})
    finally:
        sink.stop()


def test_key_errors_are_config_errors(make_server, pki, tmp_path):
    key, _ = genkey(tmp_path, "k", 2048)
    s = make_server(extra=dkim_conf("example.test", "sel", key))
    line = s.conf.read_text().splitlines().index(f"key = {key}") + 1
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 0, r
    os.chmod(key, 0o640)
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2, r
    assert (f"{s.conf}:{line}: [dkim example.test] key: {key} must be a regular file of mode "
            f"0600 or stricter (it is 0640)") in r.stderr, r.stderr
    assert "PRIVATE" not in r.stdout + r.stderr
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    os.chmod(key, 0o600)
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and f"{s.conf}:{line}: [dkim example.test] key: {key}: not a PEM" \
        in r.stderr, r.stderr
    key.unlink()
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and "No such file or directory" in r.stderr, r
    ec = tmp_path / "ec.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(ec)], check=True)
    os.chmod(ec, 0o600)
    s.conf.write_text(s.conf.read_text().replace(f"key = {key}", f"key = {ec}"))
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and "DKIM signs with RSA or Ed25519" in r.stderr, r
    s.conf.write_text(s.conf.read_text().replace("selector = sel\n", ""))
    r = run("serve", "--check", "-c", str(s.conf))
    assert r.returncode == 2 and "[dkim example.test] needs selector" in r.stderr, r


def test_audit_warns_about_short_rsa_key(make_server, pki, tmp_path):
    key, _ = genkey(tmp_path, "k", 1024)
    s = make_server(extra=dkim_conf("example.test", "old", key))
    r = run("audit", "-c", str(s.conf), "--json")
    found = [f for f in json.loads(r.stdout)["findings"] if f["id"] == "dkim-key-short"]
    assert len(found) == 1 and found[0]["severity"] == "warning", r.stdout
    assert "1024" in found[0]["evidence"] and "example.test" in found[0]["evidence"]
    key2, _ = genkey(tmp_path, "k2", 2048)
    s.conf.write_text(s.conf.read_text().replace(f"key = {key}", f"key = {key2}"))
    r = run("audit", "-c", str(s.conf), "--json")
    assert not [f for f in json.loads(r.stdout)["findings"] if f["id"] == "dkim-key-short"]

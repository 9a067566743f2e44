"""`smtpgate audit -c FILE [--json]` and the audit in `serve --check`: the real
binary on configs made here, one per rule, each with the finding id expected
in --json and the exit status (1 only when a finding is an error).

Certificates come from the session PKI (root -> intermediate -> leaf, 30
days: so `tls-cert-expiring-soon` is expected on them as a warning); expired
and self-signed ones are made with the `cryptography` module, which can set
any validity period (OpenSSL 3.0's `x509` cannot back-date).
"""
import datetime
import json
import os
import pathlib
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import PASSWORD, SMTPGATE, USER, free_port, wait_port

# what the session PKI always gives (30-day certificates)
PKI_NOISE = {"tls-cert-expiring-soon"}


def run(*args, **kw):
    return subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=60, **kw)


def audit_json(conf):
    r = run("audit", "-c", str(conf), "--json")
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    assert doc["config"] == str(conf)
    for f in doc["findings"]:
        assert set(f) == {"id", "severity", "evidence", "cause", "fix"}, f
        assert f["severity"] in ("error", "warning", "info")
        assert f["cause"] and f["fix"] and f["evidence"]
    # exit 1 exactly when a finding is an error
    assert r.returncode == (1 if any(f["severity"] == "error" for f in doc["findings"]) else 0)
    return r.returncode, doc["findings"]


def make_conf(d, pki, listen=None, tls=None, more="", hostname="mail.example.test",
              log="stderr", spool="spool", domains="example.test", mechanisms="PLAIN LOGIN"):
    """A config in d with a passwd file made by `smtpgate user add` (0600)."""
    d.mkdir(parents=True, exist_ok=True)
    if listen is None:
        listen = f"[listen submission]\naddress = 127.0.0.1:{free_port()}\ntls = starttls\n"
    if tls is None:
        tls = f"cert = {pki.dir / 'mail-chain.pem'}\nkey = {pki.dir / 'mail.key'}\n"
    conf = d / "smtpgate.conf"
    conf.write_text(
        f"[server]\nhostname = {hostname}\nspool = {spool}\nlog = {log}\nuser = nobody\n\n"
        f"{listen}\n"
        f"[tls]\n{tls}\n[auth]\nbackend = file:users\nmechanisms = {mechanisms}\n\n"
        + (f"[domains]\nlocal = {domains}\n\n" if domains else "") + more)
    if not (d / "users").exists():
        subprocess.run([SMTPGATE, "user", "add", USER, "-f", str(d / "users"),
                        "--password-stdin"], input=PASSWORD + "\n", text=True, check=True,
                       capture_output=True)
    return conf


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(d, name, pki, days_from, days_to, self_signed=False, dns="mail.example.test"):
    """A leaf (key in NAME.key, 0600; chain in NAME.pem) valid from days_from to
    days_to relative to now, signed by the PKI's intermediate or by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    if self_signed:
        issuer_name, issuer_key, chain_tail = _name(dns), key, b""
    else:
        inter_pem = (pki.dir / "inter.pem").read_bytes()
        inter = x509.load_pem_x509_certificate(inter_pem)
        issuer_name = inter.subject
        issuer_key = serialization.load_pem_private_key(
            (pki.dir / "inter.key").read_bytes(), None)
        chain_tail = inter_pem
    b = (x509.CertificateBuilder()
         .subject_name(_name(dns)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days_from))
         .not_valid_after(now + datetime.timedelta(days=days_to))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    cert = b.sign(issuer_key, hashes.SHA256())
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + chain_tail)
    kp = d / f"{name}.key"
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)
    return d / f"{name}.pem", kp


def ids(findings):
    return {f["id"] for f in findings}


def sev(findings, fid):
    return {f["severity"] for f in findings if f["id"] == fid}


def test_clean_config(tmp_path, pki):
    conf = make_conf(tmp_path, pki)
    rc, findings = audit_json(conf)
    assert rc == 0
    assert ids(findings) <= PKI_NOISE, findings
    assert sev(findings, "tls-cert-expiring-soon") <= {"warning"}
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "configuration OK" in r.stdout


def test_integration_server_config_passes(tmp_path, pki, make_server):
    """The config every integration test uses: warnings at most."""
    s = make_server()
    rc, findings = audit_json(s.conf)
    assert rc == 0, findings
    r = run("serve", "-c", str(s.conf), "--check")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_human_output(tmp_path, pki):
    conf = make_conf(tmp_path, pki, listen="[listen s]\naddress = 127.0.0.1:1\ntls = none\n"
                     "auth = required\n[listen t]\naddress = 127.0.0.1:2\n")
    r = run("audit", "-c", str(conf))
    assert r.returncode == 1
    assert f"Audit of {conf}" in r.stdout
    assert "[error] listen-auth-without-tls" in r.stdout
    assert "  seen:  [listen s]" in r.stdout
    assert "  cause: " in r.stdout and "  fix:   " in r.stdout
    # errors come before warnings
    assert r.stdout.index("[error]") < r.stdout.index("[warning]")


def _chain(pki):
    return f"cert = {pki.dir / 'mail-chain.pem'}\nkey = {pki.dir / 'mail.key'}\n"


def _pub_listen(extra=""):
    return f"[listen submission]\naddress = *:{free_port()}\ntls = starttls\n{extra}"


# name, config kwargs (given pki and tmp_path), expected id, its severity
RULES = [
    ("ciphers-weak", lambda p, d: dict(tls=_chain(p) + "ciphers = AES128-SHA:ECDHE+AESGCM\n"),
     "tls-ciphers-weak", "warning"),
    ("ciphers-insecure",
     lambda p, d: dict(tls=_chain(p) + "ciphers = ECDHE+AESGCM:AECDH-AES128-SHA:@SECLEVEL=0\n"),
     "tls-ciphers-insecure", "error"),
    ("ciphers-invalid", lambda p, d: dict(tls=_chain(p) + "ciphers = NOPE\n"),
     "tls-ciphers-invalid", "error"),
    ("auth-without-tls",
     lambda p, d: dict(listen=f"[listen s]\naddress = 127.0.0.1:{free_port()}\ntls = none\n"
                              "auth = optional\nrelay = local\n"),
     "listen-auth-without-tls", "warning"),
    ("relay-local-no-domains",
     lambda p, d: dict(listen=f"[listen mx]\naddress = 127.0.0.1:{free_port()}\n"
                              "auth = off\nrelay = local\n", domains=None),
     "relay-local-no-domains", "warning"),
    ("unauthenticated-mx",
     lambda p, d: dict(listen=_pub_listen("auth = off\nrelay = local\n")),
     "relay-unauthenticated-mx", "info"),
    ("timeout", lambda p, d: dict(listen=_pub_listen(), more="[limits]\ntimeout_command = 1h\n"),
     "limits-timeout-too-long", "warning"),
    ("message-size", lambda p, d: dict(listen=_pub_listen(), more="[limits]\nmessage_size = 1G\n"),
     "limits-message-size-too-large", "warning"),
    ("recipients", lambda p, d: dict(listen=_pub_listen(), more="[limits]\nrecipients = 2000\n"),
     "limits-recipients-too-many", "warning"),
    ("errors", lambda p, d: dict(listen=_pub_listen(), more="[limits]\nerrors = 500\n"),
     "limits-errors-too-many", "warning"),
    ("key-mismatch",
     lambda p, d: dict(tls=f"cert = {p.dir / 'mail-chain.pem'}\nkey = {p.dir / 'other.key'}\n"),
     "tls-cert-key-mismatch", "error"),
    ("chain-incomplete",
     lambda p, d: dict(tls=f"cert = {p.dir / 'mail.crt'}\nkey = {p.dir / 'mail.key'}\n"),
     "tls-cert-chain-incomplete", "error"),
    ("name-mismatch", lambda p, d: dict(hostname="mx.elsewhere.test"),
     "tls-cert-name-mismatch", "warning"),
    ("cert-missing", lambda p, d: dict(tls=f"cert = {d / 'nope.pem'}\nkey = {p.dir / 'mail.key'}\n"),
     "tls-cert-unreadable", "error"),
    ("spool-missing-parent", lambda p, d: dict(spool="/proc/nonexistent/spool"),
     "spool-not-writable", "warning"),
    ("log-missing-parent", lambda p, d: dict(log="/proc/nonexistent/smtpgate.log"),
     "log-file-not-writable", "warning"),
    # an allow list without loopback: a local monitoring check could get itself banned
    ("loopback-bannable", lambda p, d: dict(more="[limits]\nallow = 10.0.0.0/8\n"),
     "limits-loopback-bannable", "warning"),
    # a listener on a named address that [limits] allow does not cover (the audit
    # does not bind: the address need not be this host's)
    ("own-address-bannable",
     lambda p, d: dict(listen=f"[listen s]\naddress = 192.0.2.10:{free_port()}\n"
                              "tls = starttls\n"),
     "limits-own-address-bannable", "warning"),
    # whoever is in proxy_from may claim any client address
    ("proxy-from-wide",
     lambda p, d: dict(listen=f"[listen s]\naddress = 127.0.0.1:{free_port()}\n"
                              "tls = starttls\nproxy_protocol = yes\nproxy_from = 10.0.0.0/8\n"),
     "listen-proxy-from-wide", "warning"),
]


@pytest.mark.parametrize("name,kw,fid,severity", RULES, ids=[r[0] for r in RULES])
def test_rule(tmp_path, pki, name, kw, fid, severity):
    conf = make_conf(tmp_path, pki, **kw(pki, tmp_path))
    rc, findings = audit_json(conf)
    assert fid in ids(findings), findings
    assert sev(findings, fid) == {severity}, findings
    assert ids(findings) - PKI_NOISE == {fid}, findings
    assert rc == (1 if severity == "error" else 0)


def test_expired_certificate(tmp_path, pki):
    chain, key = make_cert(tmp_path, "expired", pki, -60, -1)
    conf = make_conf(tmp_path, pki, tls=f"cert = {chain}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 1
    assert ids(findings) == {"tls-cert-expired"} | PKI_NOISE  # the intermediate: 30 days
    f = [f for f in findings if f["id"] == "tls-cert-expired"][0]
    assert f["severity"] == "error" and "expired on" in f["evidence"]


def test_not_yet_valid_certificate(tmp_path, pki):
    chain, key = make_cert(tmp_path, "future", pki, 2, 20)
    conf = make_conf(tmp_path, pki, tls=f"cert = {chain}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 1
    assert "tls-cert-not-yet-valid" in ids(findings)


def test_self_signed_certificate(tmp_path, pki):
    chain, key = make_cert(tmp_path, "self", pki, -1, 365, self_signed=True)
    conf = make_conf(tmp_path, pki, tls=f"cert = {chain}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 0
    assert ids(findings) == {"tls-cert-self-signed"}, findings


def test_key_readable_by_others(tmp_path, pki):
    chain, key = make_cert(tmp_path, "leaf", pki, -1, 365)
    key.chmod(0o644)
    conf = make_conf(tmp_path, pki, tls=f"cert = {chain}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 0
    assert ids(findings) == {"tls-key-readable-by-others"} | PKI_NOISE, findings


def test_passwd_file_readable_by_group(tmp_path, pki):
    conf = make_conf(tmp_path, pki)
    (tmp_path / "users").chmod(0o640)
    rc, findings = audit_json(conf)
    assert rc == 1
    assert sev(findings, "auth-passwd-file-permissions") == {"error"}
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "[error] auth-passwd-file-permissions" in r.stdout
    assert "the audit found errors" in r.stderr


def test_jwks_world_writable(tmp_path, pki):
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}\n')
    jwks.chmod(0o666)
    conf = make_conf(tmp_path, pki, more=f"[oauth]\njwks = {jwks}\n"
                     "issuer = https://idp.example.test\naudience = smtp\n")
    rc, findings = audit_json(conf)
    assert rc == 1
    assert sev(findings, "oauth-jwks-file-writable") == {"error"}


def test_spool_permissions(tmp_path, pki):
    conf = make_conf(tmp_path, pki)
    (tmp_path / "spool").mkdir(mode=0o700)
    rc, findings = audit_json(conf)
    assert ids(findings) <= PKI_NOISE
    (tmp_path / "spool").chmod(0o755)
    rc, findings = audit_json(conf)
    assert rc == 0
    assert ids(findings) - PKI_NOISE == {"spool-permissions-open"}
    if os.geteuid() == 0:
        os.chown(tmp_path / "spool", 1, 1)
        (tmp_path / "spool").chmod(0o700)
        rc, findings = audit_json(conf)
        assert ids(findings) - PKI_NOISE == {"spool-owner-mismatch"}


def test_log_world_readable(tmp_path, pki):
    log = tmp_path / "smtpgate.log"
    log.write_text("")
    log.chmod(0o644)
    conf = make_conf(tmp_path, pki, log=str(log))
    rc, findings = audit_json(conf)
    assert rc == 0
    assert sev(findings, "log-file-world-readable") == {"info"}
    log.chmod(0o640)
    assert "log-file-world-readable" not in ids(audit_json(conf)[1])


def test_cram_md5(tmp_path, pki):
    conf = make_conf(tmp_path, pki, mechanisms="PLAIN CRAM-MD5")
    r = run("audit", "-c", str(conf), "--json")
    if r.returncode == 2 and "not supported" in r.stderr:
        pytest.skip("this build's config does not accept CRAM-MD5 yet")
    rc, findings = audit_json(conf)
    assert rc == 0
    assert sev(findings, "auth-cram-md5-enabled") == {"warning"}


def test_scram_without_tls(tmp_path, pki):
    """SCRAM works without TLS: AUTH is offered there, on a cleartext session."""
    conf = make_conf(tmp_path, pki, mechanisms="SCRAM-SHA-256 PLAIN",
                     listen=f"[listen s]\naddress = 127.0.0.1:{free_port()}\ntls = none\n"
                            "auth = required\n")
    r = run("audit", "-c", str(conf), "--json")
    if r.returncode == 2 and "not supported" in r.stderr:
        pytest.skip("this build's config does not accept SCRAM yet")
    rc, findings = audit_json(conf)
    assert rc == 0
    assert sev(findings, "listen-auth-without-tls") == {"warning"}
    assert "SCRAM-SHA-256" in findings[0]["evidence"]


def test_serve_check_prints_warnings_and_passes(tmp_path, pki):
    conf = make_conf(tmp_path, pki, tls=_chain(pki) + "ciphers = AES128-SHA:ECDHE+AESGCM\n")
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "[warning] tls-ciphers-weak" in r.stdout
    assert "[warning] tls-cert-expiring-soon" in r.stdout
    assert "configuration OK" in r.stdout


def test_serve_check_fails_on_expired_certificate(tmp_path, pki):
    chain, key = make_cert(tmp_path, "expired", pki, -60, -1)
    conf = make_conf(tmp_path, pki, tls=f"cert = {chain}\nkey = {key}\n")
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "[error] tls-cert-expired" in r.stdout
    assert "configuration OK" not in r.stdout


def test_config_error_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nhostname = ok.test\nbogus = 1\n")
    r = run("audit", "-c", str(conf), "--json")
    assert r.returncode == 2
    assert f"{conf}:3: unknown key \"bogus\" in [server]" in r.stderr
    assert r.stdout == ""
    r = run("audit", "-c", str(tmp_path / "nope.conf"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_usage(tmp_path):
    r = run("audit", "--help")
    assert r.returncode == 0 and "usage: smtpgate audit" in r.stdout
    assert run("audit").returncode == 2
    assert run("audit", "-c", "x", "--bogus").returncode == 2
    assert run("audit", "-c", "x", "extra").returncode == 2
    assert "audit" in run("--help").stdout


def _root_ca(d, cn):
    """A self-signed CA (cert in d/NAME-ca.pem) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _leaf_of(d, issuer, issuer_key, aia=None):
    """A leaf for mail.example.test signed by issuer, alone in d/leaf.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    b = (x509.CertificateBuilder()
         .subject_name(_name("mail.example.test")).issuer_name(issuer.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName("mail.example.test")]),
                        critical=False)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if aia is not None:
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(aia))]), critical=False)
    cert = b.sign(issuer_key, hashes.SHA256())
    d.mkdir(parents=True, exist_ok=True)
    (d / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp = d / "leaf.key"
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)
    return d / "leaf.pem", kp


def test_leaf_issued_by_root_beside_it_is_complete(tmp_path, pki):
    """A private CA signing directly with its root (as `make run` does): the
    root sits beside the leaf, and a server need not send it."""
    ca, ca_key = _root_ca(tmp_path / "certs", "private root")
    cert, key = _leaf_of(tmp_path / "certs", ca, ca_key)
    conf = make_conf(tmp_path, pki, tls=f"cert = {cert}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 0 and ids(findings) == set(), findings
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_leaf_of_root_found_nowhere_is_info(tmp_path, pki):
    """The issuer is in no file beside the leaf nor trusted here: maybe a
    private root, maybe an intermediate; an info finding, the check passes."""
    ca, ca_key = _root_ca(tmp_path / "ca", "far away root")
    cert, key = _leaf_of(tmp_path / "certs", ca, ca_key)
    conf = make_conf(tmp_path, pki, tls=f"cert = {cert}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 0 and ids(findings) == {"tls-cert-issuer-unknown"}, findings
    f = [f for f in findings if f["id"] == "tls-cert-issuer-unknown"][0]
    assert f["severity"] == "info" and "/CN=far away root" in f["evidence"]
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_leaf_of_intermediate_beside_it_is_incomplete(tmp_path, pki):
    """The intermediate is in the folder but not in the cert file."""
    rc, findings = audit_json(make_conf(
        tmp_path, pki, tls=f"cert = {pki.dir / 'mail.crt'}\nkey = {pki.dir / 'mail.key'}\n"))
    assert rc == 1
    f = [f for f in findings if f["id"] == "tls-cert-chain-incomplete"][0]
    assert "an intermediate CA (found in " in f["evidence"] and "inter.pem" in f["evidence"], f


def test_leaf_naming_its_issuer_url_is_incomplete(tmp_path, pki):
    """A leaf alone whose issuer is found nowhere but that names a caIssuers
    URL, as every public CA's leaf does (and those are never root-signed)."""
    ca, ca_key = _root_ca(tmp_path / "ca", "public-like intermediate")
    cert, key = _leaf_of(tmp_path / "certs", ca, ca_key,
                         aia="http://ca.example.test/inter.der")
    conf = make_conf(tmp_path, pki, tls=f"cert = {cert}\nkey = {key}\n")
    rc, findings = audit_json(conf)
    assert rc == 1 and ids(findings) == {"tls-cert-chain-incomplete"}, findings
    assert "http://ca.example.test/inter.der" in findings[0]["evidence"]
    r = run("serve", "-c", str(conf), "--check")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "[error] tls-cert-chain-incomplete" in r.stdout


def test_demo_passes_its_own_check(tmp_path):
    """`make run` (contrib/demo.sh): its configuration passes `serve --check`
    and `audit` while the demo server runs."""
    repo = pathlib.Path(__file__).resolve().parents[2]
    # the demo's network process runs as nobody where nobody can reach it
    for d in [tmp_path, *tmp_path.parents][:-1]:
        os.chmod(d, os.stat(d).st_mode | 0o111)
    env = dict(os.environ, SMTPGATE_DEMO_DIR=str(tmp_path / "run"),
               SMTPGATE_DEMO_SUBMISSION=str(free_port()), SMTPGATE_DEMO_SMTPS=str(free_port()))
    p = subprocess.Popen(["sh", str(repo / "contrib" / "demo.sh"), SMTPGATE], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_port(int(env["SMTPGATE_DEMO_SUBMISSION"]), proc=p)
        conf = tmp_path / "run" / "smtpgate.conf"
        r = run("serve", "-c", str(conf), "--check")
        assert r.returncode == 0, (r.stdout, r.stderr)
        rc, findings = audit_json(conf)
        assert rc == 0 and findings == [], findings
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out


def _line_of(conf, prefix):
    for n, line in enumerate(conf.read_text().splitlines(), 1):
        if line.startswith(prefix):
            return n
    raise AssertionError(prefix)


# name, the [tls] lines (given pki and tmp_path), the key of the line at fault,
# the words of the problem, the finding id the audit gives
SERVE_TLS_ERRORS = [
    ("cert-missing", lambda p, d: (d / "nope.pem", p.dir / "mail.key"), "cert",
     "cannot be read: No such file or directory", "tls-cert-unreadable"),
    ("cert-not-pem", lambda p, d: (p.dir / "mail.key", p.dir / "mail.key"), "cert",
     "holds no PEM certificate", "tls-cert-unreadable"),
    ("key-missing", lambda p, d: (p.dir / "mail-chain.pem", d / "nope.key"), "key",
     "cannot be read: No such file or directory", "tls-cert-unreadable"),
    ("key-not-pem", lambda p, d: (p.dir / "mail-chain.pem", p.dir / "inter.pem"), "key",
     "holds no unencrypted PEM private key", "tls-cert-unreadable"),
    ("key-encrypted", lambda p, d: (p.dir / "mail-chain.pem", d / "enc.key"), "key",
     "holds no unencrypted PEM private key", "tls-cert-unreadable"),
    ("key-mismatch", lambda p, d: (p.dir / "mail-chain.pem", p.dir / "other.key"), "key",
     "does not match the first certificate of", "tls-cert-key-mismatch"),
]


@pytest.mark.parametrize("name,files,at,words,fid", SERVE_TLS_ERRORS,
                         ids=[e[0] for e in SERVE_TLS_ERRORS])
def test_serve_tls_errors_match_audit(tmp_path, pki, name, files, at, words, fid):
    """`serve` names the file, the config line of the file at fault and the
    fix in the words of the audit's evidence, not OpenSSL's error codes."""
    subprocess.run(["openssl", "pkey", "-in", str(pki.dir / "mail.key"), "-aes128",
                    "-passout", "pass:secret", "-out", str(tmp_path / "enc.key")], check=True)
    cert, key = files(pki, tmp_path)
    conf = make_conf(tmp_path, pki, tls=f"cert = {cert}\nkey = {key}\n")
    line = _line_of(conf, f"{at} = ")
    r = subprocess.run([SMTPGATE, "serve", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.stdout, r.stderr)
    want = f"{conf}:{line}: [tls] {at} {key if at == 'key' else cert}"
    assert f"smtpgate: {want}" in r.stderr, r.stderr
    assert words in r.stderr and "; fix: " in r.stderr, r.stderr
    assert "error:" not in r.stderr and "SSL routines" not in r.stderr, r.stderr
    said = r.stderr.strip().split("smtpgate: ", 1)[1].split("; fix: ")[0]
    rc, findings = audit_json(conf)
    assert rc == 1
    assert [f["evidence"] for f in findings if f["id"] == fid] == [said], findings

"""smtpgate init: the files it writes, their modes, the certificate it makes,
and every refusal (an existing file, bad options)."""
import datetime
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import SMTPGATE

NAME = "mail.example.test"


def run(*args, cwd=None, **kw):
    return subprocess.run([SMTPGATE, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, **kw)


def mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def init(d, *extra):
    return run("init", str(d), "--hostname", NAME, *extra)


def test_init_writes_config_users_and_certificate_with_their_modes(tmp_path):
    d = tmp_path / "mail"
    old = os.umask(0)  # the modes must not depend on the caller's umask
    try:
        r = init(d)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in d.iterdir()) == ["cert.pem", "key.pem", "smtpgate.conf",
                                                    "users"]
    assert mode(d / "users") == 0o600 and (d / "users").read_bytes() == b""
    assert mode(d / "key.pem") == 0o600
    assert mode(d / "cert.pem") == 0o644
    assert mode(d / "smtpgate.conf") == 0o644
    conf = (d / "smtpgate.conf").read_text()
    assert f"hostname = {NAME}\n" in conf
    assert "address = *:587\n" in conf and "address = *:465\n" in conf
    assert "tls = starttls\n" in conf and "tls = implicit\n" in conf
    assert "backend = file:users" in conf and "cert = cert.pem\n" in conf
    # the next three commands, with the paths just written
    assert f"user add you@example.test -f {d}/users" in r.stdout
    assert f"serve -c {d}/smtpgate.conf --check" in r.stdout


def test_init_certificate_is_self_signed_p256_for_the_name(tmp_path):
    assert init(tmp_path).returncode == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert cert.version == x509.Version.v3
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAME
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NAME]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=800) < life <= datetime.timedelta(days=825)
    now = datetime.datetime.utcnow()
    assert cert.not_valid_before <= now + datetime.timedelta(seconds=5)
    # the key file holds the key of this certificate
    r = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout",
                        "-pubkey"], capture_output=True, text=True, check=True)
    k = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "key.pem"), "-pubout"],
                       capture_output=True, text=True, check=True)
    assert r.stdout == k.stdout
    # two runs, two serials
    assert init(tmp_path / "again").returncode == 0
    other = x509.load_pem_x509_certificate((tmp_path / "again" / "cert.pem").read_bytes())
    assert other.serial_number != cert.serial_number and cert.serial_number > 0


def test_init_config_passes_serve_check_with_only_the_self_signed_warning(tmp_path, smtpgate_user):
    assert init(tmp_path, "--submission-port", "2587", "--smtps-port", "2465").returncode == 0
    r = run("serve", "-c", str(tmp_path / "smtpgate.conf"), "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[warning] tls-cert-self-signed" in r.stdout
    assert "[error]" not in r.stdout
    findings = [ln for ln in r.stdout.splitlines() if ln.startswith("[")]
    assert findings == ["[warning] tls-cert-self-signed"]


@pytest.mark.parametrize("existing", ["smtpgate.conf", "users", "cert.pem", "key.pem"])
def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, existing):
    (tmp_path / existing).write_text("mine\n")
    r = init(tmp_path)
    assert r.returncode == 2
    assert f"{tmp_path}/{existing} exists: not overwritten" in r.stderr
    assert (tmp_path / existing).read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_init_refuses_a_symlink_in_place_of_a_file(tmp_path):
    target = tmp_path / "elsewhere"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "users").symlink_to(target)
    r = init(tmp_path / "d")
    assert r.returncode == 2 and "users exists" in r.stderr
    assert not target.exists()


def test_init_with_given_certificate_and_key(tmp_path, pki, smtpgate_user):
    leaf_cert, leaf_key = pki.leaf("given", [NAME], ["127.0.0.1"])
    os.chmod(leaf_key, 0o600)
    d = tmp_path / "conf"
    r = init(d, "--cert", str(leaf_cert), "--key", str(leaf_key))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in d.iterdir()) == ["smtpgate.conf", "users"]
    conf = (d / "smtpgate.conf").read_text()
    assert f"cert = {os.path.realpath(leaf_cert)} " in conf
    assert f"key = {os.path.realpath(leaf_key)} " in conf
    r = run("serve", "-c", str(d / "smtpgate.conf"), "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tls-cert-self-signed" not in r.stdout


@pytest.mark.parametrize("args,message", [
    ([], "usage: smtpgate init"),
    (["--hostname", NAME], "usage: smtpgate init"),
    (["DIR"], "usage: smtpgate init"),
    (["DIR", "--hostname", "bad name"], "is not a host name"),
    (["DIR", "--hostname", "localhost"], "is not a host name"),
    (["DIR", "--hostname", "a_b.example.test"], "is not a host name"),
    (["DIR", "--hostname", NAME, "--cert", "c.pem"], "--cert and --key go together"),
    (["DIR", "--hostname", NAME, "--cert", "nope.pem", "--key", "nope.key"], "nope.pem"),
    (["DIR", "--hostname", NAME, "--submission-port", "0"], "bad port"),
    (["DIR", "--hostname", NAME, "--smtps-port", "65536"], "bad port"),
    (["DIR", "--hostname", NAME, "--smtps-port", "587"], "two ports"),
    (["DIR", "--hostname", NAME, "--listen", "1.2.3.4 ; x"], "bad --listen"),
    (["DIR", "DIR2", "--hostname", NAME], "usage: smtpgate init"),
])
def test_init_usage_errors_exit_2_and_write_nothing(tmp_path, args, message):
    r = run("init", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_help():
    r = run("init", "--help")
    assert r.returncode == 0
    assert "--hostname NAME" in r.stdout and "Exit status:" in r.stdout


def test_init_ipv6_listen_address_is_bracketed(tmp_path):
    assert init(tmp_path, "--listen", "::1", "--submission-port", "2587").returncode == 0
    assert "address = [::1]:2587\n" in (tmp_path / "smtpgate.conf").read_text()


def test_init_dir_with_trailing_slash(tmp_path):
    r = run("init", "mail/", "--hostname", NAME, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "-f mail/users" in r.stdout and "-c mail/smtpgate.conf --check" in r.stdout


def test_init_missing_parent_folder_fails_and_says_where(tmp_path):
    r = init(tmp_path / "no" / "such")
    assert r.returncode == 1
    assert f"{tmp_path}/no/such: No such file or directory" in r.stderr

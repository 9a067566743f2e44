"""Certificates renewed on disk reach new connections without a restart
(server/certwatch.h): a pair renamed into place is served within 5 s while
an open session keeps its own; a broken pair (a key that does not match, a
cert that is not PEM, a half-written file, a link to nothing) is refused
with a tls_cert_refused event in the words of `serve --check` and the pair
in force stays; a real ACME flow (pebble and uacme from Debian) issues and
renews the certificate, and the probe sees the new serial."""
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

from cryptography import x509

from conftest import PASSWORD, SMTPGATE, USER, free_port, make_message, use_own_certificate, \
    wait_for
from smtpclient import SMTPClient
from test_privsep import TEST_USER, dropped, test_user  # noqa: F401 (fixtures)

RENEW_S = 5.0  # the promise: new connections see a renewed pair within this


def pem_serial(path):
    return x509.load_pem_x509_certificate(pathlib.Path(path).read_bytes()).serial_number


def served_serial(port, server_hostname="mail.example.test"):
    """The serial of the leaf a new implicit-TLS connection is given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as so:
        with ctx.wrap_socket(so, server_hostname=server_hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def s_client_serial(port):
    """The same through `openssl s_client -starttls smtp` (a client of its own)."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-starttls", "smtp", "-servername", "mail.example.test"],
                       input="", capture_output=True, text=True, timeout=20)
    pem = r.stdout[r.stdout.index("-----BEGIN CERTIFICATE-----"):
                   r.stdout.index("-----END CERTIFICATE-----") + 25]
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def wait_serial(port, serial, timeout=RENEW_S):
    """Seconds until a new connection sees serial (TimeoutError past timeout)."""
    t0 = time.monotonic()
    wait_for(lambda: served_serial(port) == serial, timeout=timeout, interval=0.1,
             what=f"serial {serial:X} to be served")
    return time.monotonic() - t0


def replace(path, data):
    """As ACME clients do: a new file written beside, then renamed into place."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def refused(server, before, needle, timeout=10):
    """The first tls_cert_refused event after the `before` first ones whose
    error holds needle."""
    def find():
        for ev in server.events("tls_cert_refused")[before:]:
            if needle in ev["error"]:
                return ev
        return None
    return wait_for(find, timeout=timeout, interval=0.1, what=f"tls_cert_refused: {needle}")


def check_words(server):
    """What `serve --check` says of the configuration as it is on disk now."""
    r = subprocess.run([SMTPGATE, "serve", "--check", "-c", str(server.conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    return r.stderr.strip().removeprefix("smtpgate: ")


def test_renamed_pair_is_served_within_5s_and_open_session_keeps_its_own(make_server, pki):
    s = make_server()
    chain, key = use_own_certificate(s)
    s.start()
    old = pem_serial(chain)
    ev = s.wait_event("tls_cert_loaded", lambda r: r["cert"] == str(chain))
    assert int(ev["serial"], 16) == old and ev["trigger"] == "start", ev
    assert served_serial(s.smtps) == old

    # a session in the middle of a transaction, over TLS with the old pair
    c = SMTPClient(s.submission)
    c.submit_ready(USER, PASSWORD)
    assert x509.load_der_x509_certificate(
        c.sock.getpeercert(binary_form=True)).serial_number == old
    assert c.cmd(f"MAIL FROM:<{USER}>").code == 250
    assert c.cmd("RCPT TO:<bob@example.net>").code == 250

    new_chain, new_key = pki.leaf("renew-a", ["mail.example.test"], ["127.0.0.1"])
    new = pem_serial(new_chain)
    assert new != old
    replace(key, new_key.read_bytes())
    replace(chain, new_chain.read_bytes())
    took = wait_serial(s.smtps, new)
    assert took < RENEW_S, took
    assert s_client_serial(s.submission) == new
    ev = s.wait_event("tls_cert_loaded", lambda r: r["trigger"] == "file change")
    leaf = x509.load_pem_x509_certificate(new_chain.read_bytes())
    assert int(ev["serial"], 16) == new, ev
    assert ev["subject"] == "CN=mail.example.test", ev
    assert ev["not_after"] == leaf.not_valid_after.strftime("%Y-%m-%dT%H:%M:%SZ"), ev
    assert ev["cert"] == str(chain) and ev["key"] == str(key), ev
    s.wait_event("tls_reload", lambda r: r["result"] == "ok")
    assert not s.events("tls_cert_refused"), s.events("tls_cert_refused")

    # the open session finishes its message on the pair it began with
    assert c.cmd("DATA").code == 354
    c.send(make_message(USER, "bob@example.net", "renew-open-session").encode() + b".\r\n")
    assert c.reply().code == 250
    assert x509.load_der_x509_certificate(
        c.sock.getpeercert(binary_form=True)).serial_number == old
    assert c.cmd("QUIT").code == 221
    c.sock.close()
    # a file touched but not changed is not a renewal
    renewals = len(s.events("tls_reload"))
    os.utime(chain)
    time.sleep(2.5)
    assert len(s.events("tls_reload")) == renewals, s.events("tls_reload")


def test_broken_pairs_are_refused_and_the_pair_in_force_stays(make_server, pki):
    s = make_server()
    chain, key = use_own_certificate(s)
    s.start()
    old = pem_serial(chain)
    good_chain, good_key = chain.read_bytes(), key.read_bytes()
    n = 0

    # a key that does not match the certificate
    replace(key, (pki.dir / "other.key").read_bytes())
    ev = refused(s, n, f"[tls] key {key} does not match")
    assert ev["error"] == check_words(s), ev
    assert served_serial(s.smtps) == old
    n = len(s.events("tls_cert_refused"))

    # a cert that is no certificate, written in place
    key.write_bytes(good_key)
    chain.write_text("this is not a certificate\n")
    ev = refused(s, n, f"[tls] cert {chain} holds no PEM certificate")
    assert ev["error"] == check_words(s), ev
    assert served_serial(s.smtps) == old
    n = len(s.events("tls_cert_refused"))

    # a link to a file that is not there (certbot's live/ -> archive/)
    chain.unlink()
    chain.symlink_to(s.dir / "archive-missing.pem")
    ev = refused(s, n, f"[tls] cert {chain} cannot be read: No such file or directory")
    assert ev["error"] == check_words(s), ev
    assert served_serial(s.smtps) == old
    n = len(s.events("tls_cert_refused"))
    chain.unlink()
    chain.write_bytes(good_chain)

    # a renewal half done: the new cert in place, its key not yet
    new_chain, new_key = pki.leaf("renew-b", ["mail.example.test"], ["127.0.0.1"])
    new = pem_serial(new_chain)
    replace(chain, new_chain.read_bytes())
    ev = refused(s, n, f"[tls] key {key} does not match")
    assert ev["error"] == check_words(s), ev
    assert served_serial(s.smtps) == old
    n = len(s.events("tls_cert_refused"))

    # then the new key, but its cert rewritten in place and cut half-way
    replace(key, new_key.read_bytes())
    data = new_chain.read_bytes()
    with open(chain, "wb") as f:
        f.write(data[:len(data) // 2])
    ev = refused(s, n, f"[tls] cert {chain}")
    assert ev["error"] == check_words(s), ev
    assert served_serial(s.smtps) == old

    # the writer finishes: picked up, no restart
    with open(chain, "ab") as f:
        f.write(data[len(data) // 2:])
    assert wait_serial(s.smtps, new) < RENEW_S
    ev = s.wait_event("tls_cert_loaded", lambda r: r["trigger"] == "file change")
    assert int(ev["serial"], 16) == new, ev
    assert s.proc.poll() is None


def test_renewal_reaches_the_unprivileged_smtp_process(dropped, pki, tmp_path):
    """The smtp process runs as another user and cannot open the key files
    (a folder of root's, mode 0700): the parent reads the renewed pair and
    hands it over."""
    s = dropped
    private = tmp_path / "tls-private"
    private.mkdir(mode=0o700)
    chain, key = private / "chain.pem", private / "key.pem"
    chain.write_bytes((pki.dir / "mail-chain.pem").read_bytes())
    key.write_bytes((pki.dir / "mail.key").read_bytes())
    os.chmod(key, 0o600)
    conf = s.conf.read_text()
    conf = conf.replace(f"cert = {pki.dir / 'mail-chain.pem'}\n", f"cert = {chain}\n", 1)
    conf = conf.replace(f"key = {pki.dir / 'mail.key'}\n", f"key = {key}\n", 1)
    s.conf.write_text(conf)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_event("tls_cert_loaded", lambda r: r["trigger"] == "reload" and r["cert"] == str(chain))

    new_chain, new_key = pki.leaf("renew-c", ["mail.example.test"], ["127.0.0.1"])
    new = pem_serial(new_chain)
    replace(chain, new_chain.read_bytes())
    replace(key, new_key.read_bytes())
    os.chmod(key, 0o600)
    assert wait_serial(s.smtps, new) < RENEW_S
    r = subprocess.run(["setpriv", f"--reuid={TEST_USER}", f"--regid={TEST_USER}",
                        "--clear-groups", "cat", str(key)], capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    assert not s.events("tls_cert_refused"), s.events("tls_cert_refused")


# --- a real ACME flow: pebble (the ACME test server) and certbot -------------------------

def certbot(d, ca_bundle, *args):
    """certbot with every folder of its own under d, trusting ca_bundle for
    the ACME server; http-01 with a hook that does nothing (pebble runs with
    PEBBLE_VA_ALWAYS_VALID: nothing is fetched)."""
    env = dict(os.environ, REQUESTS_CA_BUNDLE=str(ca_bundle))
    r = subprocess.run(["certbot", *args, "--config-dir", str(d / "etc"),
                        "--work-dir", str(d / "work"), "--logs-dir", str(d / "logs"),
                        "--non-interactive"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_certbot_renewal_from_pebble_is_served_without_restart(make_server, pki, tmp_path):
    # no skip: without pebble or certbot this test fails (make deps installs them)
    assert shutil.which("pebble"), "pebble is not installed (make deps)"
    assert shutil.which("certbot"), "certbot is not installed (make deps)"
    acme, mgmt = free_port(), free_port()
    pchain, pkey = pki.leaf("pebble", ["localhost"], ["127.0.0.1"])
    cfg = tmp_path / "pebble.json"
    cfg.write_text(f"""{{"pebble": {{
  "listenAddress": "127.0.0.1:{acme}", "managementListenAddress": "127.0.0.1:{mgmt}",
  "certificate": "{pchain}", "privateKey": "{pkey}",
  "httpPort": {free_port()}, "tlsPort": {free_port()},
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}
""")
    env = dict(os.environ, PEBBLE_VA_ALWAYS_VALID="1", PEBBLE_VA_NOSLEEP="1",
               PEBBLE_WFE_NONCEREJECT="0")
    plog = open(tmp_path / "pebble.log", "wb")
    pebble = subprocess.Popen(["pebble", "-config", str(cfg)], env=env, stdout=plog,
                              stderr=subprocess.STDOUT)
    try:
        ctx = ssl.create_default_context(cafile=str(pki.root))

        def up():
            assert pebble.poll() is None, (tmp_path / "pebble.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", acme), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(up, timeout=15, what="pebble")
        d = tmp_path / "certbot"
        server = f"https://127.0.0.1:{acme}/dir"
        certbot(d, pki.root, "certonly", "--server", server, "--agree-tos",
                "--register-unsafely-without-email", "--manual", "--preferred-challenges",
                "http", "--manual-auth-hook", "/bin/true", "-d", "mail.example.test")
        live = d / "etc" / "live" / "mail.example.test"
        assert (live / "fullchain.pem").is_symlink()
        first = pem_serial(live / "cert.pem")

        s = make_server()
        conf = s.conf.read_text()
        conf = conf.replace(f"cert = {pki.dir / 'mail-chain.pem'}\n",
                            f"cert = {live / 'fullchain.pem'}\n", 1)
        conf = conf.replace(f"key = {pki.dir / 'mail.key'}\n", f"key = {live / 'privkey.pem'}\n", 1)
        s.conf.write_text(conf)
        s.start()
        assert s_client_serial(s.submission) == first

        certbot(d, pki.root, "renew", "--force-renewal", "--no-random-sleep-on-renew")
        assert os.readlink(live / "cert.pem").endswith("cert2.pem")
        renewed = pem_serial(live / "cert.pem")
        assert renewed != first
        t0 = time.monotonic()
        wait_for(lambda: s_client_serial(s.submission) == renewed, timeout=RENEW_S,
                 interval=0.2, what="the renewed certificate")
        assert time.monotonic() - t0 < RENEW_S
        ev = s.wait_event("tls_cert_loaded", lambda r: r["trigger"] == "file change")
        assert int(ev["serial"], 16) == renewed and ev["cert"] == str(live / "fullchain.pem"), ev
        assert not s.events("tls_cert_refused"), s.events("tls_cert_refused")

        # the whole chain is served: it verifies against pebble's root
        with urllib.request.urlopen(f"https://127.0.0.1:{mgmt}/roots/0", context=ctx) as r:
            (tmp_path / "pebble-root.pem").write_bytes(r.read())
        r = subprocess.run([SMTPGATE, "probe", f"127.0.0.1:{s.smtps}", "--tls",
                            "--sni", "mail.example.test",
                            "--cafile", str(tmp_path / "pebble-root.pem"), "--json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        tls = json.loads(r.stdout)["tls"]
        assert tls["verified"] is True and tls["name_match"] is True, tls
    finally:
        pebble.terminate()
        pebble.wait(timeout=10)
        plog.close()

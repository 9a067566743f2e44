"""A zoo of deliberately broken SMTP endpoints for `smtpgate probe` tests.

Everything listens on 127.0.0.1, is started by a test and stopped by its
finalizer (no process or thread outlives the test):

- ZooPKI: certificates made with python3-cryptography, whose validity
  dates can be set (expired), a private root -> intermediate -> leaf chain,
  and a self-signed one.
- ScriptServer: a threaded socket server running a Python function per
  connection: SMTP dialogues that misbehave on purpose (454 then 235, 421,
  never greeting, slow drip, endless replies, NUL bytes, STARTTLS with a
  chosen certificate).
- SServer: `openssl s_server` (implicit TLS) with a given chain, bounded by
  -naccept and killed at the end.
- probe(): runs `smtpgate probe ... --json` with a time limit and returns
  (exit status, parsed JSON or None, stderr).
"""
import datetime
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import SMTPGATE, free_port, wait_port

PROBE_TIMEOUT = 60  # wall-clock limit of one probe run in a test


def probe(*args, env=None, stdin=None, timeout=PROBE_TIMEOUT):
    """smtpgate probe ARGS --json -> (rc, doc or None, stderr)."""
    e = dict(os.environ)
    for k in ("SMTPACCOUNT", "SMTPPASSWORD", "SMTPAUTHMETHOD", "SMTPENABLESTARTTLS",
              "SMTPOPENSSLVERIFYMODE", "SMTPFROMADDRESS"):
        e.pop(k, None)
    e["SMTPGATE_PROBE_BACKOFF_MS"] = "200"
    e.update(env or {})
    r = subprocess.run([SMTPGATE, "probe", *[str(a) for a in args], "--json"], env=e,
                       input=stdin, capture_output=True, text=True, timeout=timeout)
    doc = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, doc, r.stderr


def ids(doc):
    return {f["id"] for f in doc["findings"]}


def severity(doc, fid):
    for f in doc["findings"]:
        if f["id"] == fid:
            return f["severity"]
    return None


# --- certificates ----------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class ZooPKI:
    """root -> intermediate -> leaves, written as PEM files into d."""

    def __init__(self, d):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._cert(_name("zoo root"), self.root_key.public_key(), _name("zoo root"),
                               self.root_key, ca=True)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = self._cert(_name("zoo intermediate"), self.inter_key.public_key(),
                                _name("zoo root"), self.root_key, ca=True)
        self.root_pem = self._write("root.pem", [self.root])

    def _cert(self, subject, pub, issuer, issuer_key, ca=False, names=(), days=(-1, 30)):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(_now() + datetime.timedelta(days=days[0]))
             .not_valid_after(_now() + datetime.timedelta(days=days[1])))
        if ca:
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                              False, False), critical=True)
        else:
            b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            sans = [x509.DNSName(n) if not n[0].isdigit() else
                    x509.IPAddress(__import__("ipaddress").ip_address(n)) for n in names]
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def _write(self, fname, certs, key=None):
        p = self.dir / fname
        p.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        if key is not None:
            kp = self.dir / (fname + ".key")
            kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
            return p, kp
        return p

    def leaf(self, label, names=("localhost", "127.0.0.1"), days=(-1, 30), chain=True,
             self_signed=False):
        """A new leaf certificate: Leaf with .chain (what a server should
        serve: leaf, then the intermediate unless chain=False), .leaf,
        .inter (None when not served) and .key files."""
        key = ec.generate_private_key(ec.SECP256R1())
        if self_signed:
            cert = self._cert(_name(names[0]), key.public_key(), _name(names[0]), key,
                              names=names, days=days)
        else:
            cert = self._cert(_name(names[0]), key.public_key(), _name("zoo intermediate"),
                              self.inter_key, names=names, days=days)
        served = [cert] if self_signed or not chain else [cert, self.inter]
        return Leaf(chain=self._write(f"{label}-chain.pem", served),
                    leaf=self._write(f"{label}-leaf.pem", [cert]),
                    inter=self._write(f"{label}-inter.pem", served[1:]) if len(served) > 1
                    else None,
                    key=self._write(f"{label}-leaf.pem", [cert], key)[1])


class Leaf:
    def __init__(self, chain, leaf, inter, key):
        self.chain, self.leaf, self.inter, self.key = chain, leaf, inter, key


# --- scripted SMTP servers ----------------------------------------------------------

class Conn:
    """One accepted connection with line helpers (bounded waits)."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(20)
        self.buf = b""
        self.lines = []  # every line received

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise EOFError
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.rstrip(b"\r").decode("latin-1")
        self.lines.append(line)
        return line

    def starttls(self, ctx):
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.buf = b""


@pytest.fixture
def script():
    """make(handler) -> a started ScriptServer, stopped after the test
    (a fixture: import it into the test module)."""
    made = []

    def make(handler):
        s = ScriptServer(handler)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class ScriptServer:
    """Runs handler(conn, server) for every connection, in a thread each."""

    def __init__(self, handler):
        self.handler = handler
        self.port = free_port()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.stopping = threading.Event()
        self.conns = 0
        self.transcripts = []  # lines received, per connection
        self.errors = []
        self.threads = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                continue
            self.conns += 1
            th = threading.Thread(target=self._run, args=(s,), daemon=True)
            self.threads.append(th)
            th.start()

    def _run(self, s):
        c = Conn(s)
        self.transcripts.append(c.lines)
        try:
            self.handler(c, self)
        except (EOFError, OSError, ssl.SSLError):
            pass
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            try:
                c.sock.close()
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.t.join(5)
        self.lsock.close()
        for th in self.threads:
            th.join(5)


def smtp_dialogue(conn, server, ehlo=("PIPELINING", "8BITMIME"), greeting="220 zoo.test ESMTP",
                  auth=None, tls_ctx=None, on_mail=None, on_rcpt=None, on_data=None,
                  on_starttls=None):
    """A small, mostly correct SMTP server: auth(conn, line) answers AUTH,
    tls_ctx enables STARTTLS, on_mail/on_rcpt/on_data give the replies to
    MAIL, RCPT and the end of DATA, on_starttls a refusal of STARTTLS."""
    conn.send(greeting + "\r\n")
    tls = False
    while True:
        line = conn.readline()
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "LHLO"):
            caps = list(ehlo)
            if tls_ctx is not None and not tls:
                caps.append("STARTTLS")
            lines = ["zoo.test"] + caps
            conn.send("".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n")
        elif verb == "HELO":
            conn.send("250 zoo.test\r\n")
        elif verb == "STARTTLS" and on_starttls is not None:
            conn.send(on_starttls + "\r\n")
        elif verb == "STARTTLS" and tls_ctx is not None:
            conn.send("220 2.0.0 go ahead\r\n")
            conn.starttls(tls_ctx)
            tls = True
        elif verb == "AUTH" and auth is not None:
            auth(conn, line)
        elif verb == "MAIL":
            conn.send((on_mail or "250 2.1.0 OK") + "\r\n")
        elif verb == "RCPT":
            conn.send((on_rcpt or "250 2.1.5 OK") + "\r\n")
        elif verb == "DATA":
            conn.send("354 go\r\n")
            while conn.readline() != ".":
                pass
            conn.send((on_data or "250 2.0.0 queued") + "\r\n")
        elif verb == "QUIT":
            conn.send("221 2.0.0 bye\r\n")
            return
        else:
            conn.send("502 5.5.1 not implemented\r\n")


def tls_server_context(chain, key, **kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain), str(key))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


# --- openssl s_server ------------------------------------------------------------------

class SServer:
    """`openssl s_server` speaking implicit TLS (no SMTP) with a certificate
    (zoo Leaf): the leaf, plus the intermediate when the Leaf serves one."""

    def __init__(self, d, leaf, extra=(), naccept=8):
        self.port = free_port()
        self.log = open(d / f"s_server-{self.port}.log", "wb")
        chain = ["-cert_chain", str(leaf.inter)] if leaf.inter is not None else []
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{self.port}",
             "-cert", str(leaf.leaf), "-key", str(leaf.key), *chain,
             "-naccept", str(naccept), *extra],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)
        # wait_port's own connection counts against -naccept (budget above)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


def wait_s(seconds):
    time.sleep(seconds)

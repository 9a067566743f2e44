#!/usr/bin/python3
"""SCRAM-SHA-256 timing for a known user (wrong password) and an unknown user.

Not a test: prints medians. Starts the real binary (SMTPGATE_BIN, else
build/smtpgate) with a throw-away PKI and measures, over implicit TLS, the
two round trips of each exchange: client-first -> server-first (the stored
key lookup, async in the server) and client-final -> 535. Samples alternate
between the two users so drift affects both alike.

  SMTPGATE_BIN=build/smtpgate bench/scram_timing.py [samples]
"""
import base64
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integ"))
from conftest import PKI, USER, Server  # noqa: E402
from smtpclient import SMTPClient, b64, client_context  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402


def attempt(c, user):
    cnonce = base64.b64encode(os.urandom(18)).decode()
    bare = f"n={user},r={cnonce}"
    t0 = time.perf_counter()
    r = c.cmd(f"AUTH SCRAM-SHA-256 {b64('n,,' + bare)}")
    t1 = time.perf_counter()
    sf = base64.b64decode(r.texts[0]).decode()
    attrs = dict(a.split("=", 1) for a in sf.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", b"wrong password", base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    noproof = f"c=biws,r={attrs['r']}"
    am = f"{bare},{sf},{noproof}".encode()
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    sig = hmac.new(hashlib.sha256(ck).digest(), am, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()
    t2 = time.perf_counter()
    r = c.cmd(b64(f"{noproof},p={proof}"))
    t3 = time.perf_counter()
    assert r.code == 535, r
    return (t1 - t0) * 1e6, (t3 - t2) * 1e6


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        pki = PKI(d / "pki")
        (d / "srv").mkdir()
        srv = Server(d / "srv", pki, mechanisms="SCRAM-SHA-256", limits="errors = 1000")
        srv.start()
        try:
            res = {"known": ([], []), "unknown": ([], [])}
            c = None
            for i in range(2 * n + 20):
                if c is None or i % 200 == 0:
                    if c is not None:
                        c.close()
                    c = SMTPClient(srv.smtps, implicit_tls=True,
                                   ctx=client_context(pki.root))
                    c.ehlo()
                who = "known" if i % 2 == 0 else "unknown"
                user = USER if who == "known" else f"nobody{i % 7}@example.test"
                a, b = attempt(c, user)
                if i >= 20:  # warm-up
                    res[who][0].append(a)
                    res[who][1].append(b)
            c.close()
        finally:
            srv.stop()
    print(f"SCRAM-SHA-256, {n} samples each, median (p90) in microseconds")
    for who in ("known", "unknown"):
        first, final = res[who]
        q = lambda v: (statistics.median(v), statistics.quantiles(v, n=10)[-1])
        print(f"  {who:8} client-first->server-first {q(first)[0]:7.1f} ({q(first)[1]:7.1f})"
              f"   client-final->535 {q(final)[0]:7.1f} ({q(final)[1]:7.1f})")


if __name__ == "__main__":
    main()

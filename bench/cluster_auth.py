#!/usr/bin/python3
"""bench/cluster_auth.py: AUTH latency as a client sees it (bench/cluster_auth.sh).

  cluster_auth.py measure PORT CAFILE N OUT.json LABEL ROUND CHEAP_USER CHEAP_PWFILE \
      DEFAULT_USER DEFAULT_PWFILE
  cluster_auth.py report DIR

measure: N rounds of five kinds, interleaved (one of each per round, so drift hits all
alike), each on a new session (connect, EHLO, STARTTLS, TLS 1.3 verified with CAFILE,
EHLO), then one AUTH, then QUIT:
  plain_cheap   AUTH PLAIN, the user's SCRAM-SHA-256 keys made with 1 PBKDF2 iteration
  scram_cheap   AUTH SCRAM-SHA-256, same user
  plain_default AUTH PLAIN, keys of `smtpgate user hash` (the default cost)
  scram_default AUTH SCRAM-SHA-256, same user
  fail_plain    AUTH PLAIN with a wrong password for the cheap user (535): the limiter's
                failure path (with [cluster]: counted in Redis too)
The latency is the client's wait for the server's replies of the AUTH exchange only
(PLAIN: AUTH -> 235/535; SCRAM: the three round trips summed), not the client's own
PBKDF2 nor the session set-up. The first WARM rounds are thrown away (connection pools,
caches). Microseconds, written as JSON with the load average before and after.

report: p50 and p99 per variant and kind, per run and over the runs of a variant, and the
differences from the variant "file" (the single node with the passwd file).
"""
import base64
import hashlib
import hmac
import json
import os
import pathlib
import socket
import ssl
import sys
import time

WARM = 10
KINDS = ["plain_cheap", "scram_cheap", "plain_default", "scram_default", "fail_plain"]
TIMEOUT = 30.0


class Session:
    def __init__(self, port, ctx):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.expect(220)
        self.cmd("EHLO bench.client.test", 250)
        self.cmd("STARTTLS", 220)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="bench.test")
        self.cmd("EHLO bench.client.test", 250)

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed after %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] == b" ":
                return int(lines[-1][:3]), lines

    def expect(self, code):
        got, lines = self.reply()
        if got != code:
            raise RuntimeError("expected %d, got %r" % (code, lines))
        return lines

    def cmd(self, line, code):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.expect(code)

    def timed(self, line, code):
        """(seconds waited for the reply, its lines)"""
        t0 = time.perf_counter()
        self.sock.sendall(line.encode() + b"\r\n")
        lines = self.expect(code)
        return time.perf_counter() - t0, lines

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


def plain(s, user, pw, code):
    w, _ = s.timed("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw)), code)
    return w


def scram(s, user, pw):
    cnonce = b64(os.urandom(18))
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
    w1, lines = s.timed("AUTH SCRAM-SHA-256 " + b64("n,," + bare), 334)
    sf = base64.b64decode(lines[-1][4:]).decode()
    a = dict(x.split("=", 1) for x in sf.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", pw.encode(), base64.b64decode(a["s"]), int(a["i"]))
    final = "c=biws,r=" + a["r"]
    am = ("%s,%s,%s" % (bare, sf, final)).encode()
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    sig = hmac.new(hashlib.sha256(ck).digest(), am, "sha256").digest()
    proof = b64(bytes(x ^ y for x, y in zip(ck, sig)))
    w2, lines = s.timed(b64(final + ",p=" + proof), 334)
    want = b"v=" + base64.b64encode(hmac.new(hmac.new(salted, b"Server Key", "sha256").digest(),
                                             am, "sha256").digest())
    if base64.b64decode(lines[-1][4:]) != want:
        raise RuntimeError("wrong server signature")
    w3, _ = s.timed("", 235)
    return w1 + w2 + w3


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def measure(argv):
    port, cafile, n, out, label, rnd = int(argv[0]), argv[1], int(argv[2]), argv[3], argv[4], \
        int(argv[5])
    cheap = (argv[6], pathlib.Path(argv[7]).read_text().strip())
    dflt = (argv[8], pathlib.Path(argv[9]).read_text().strip())
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    do = {
        "plain_cheap": lambda s: plain(s, cheap[0], cheap[1], 235),
        "scram_cheap": lambda s: scram(s, *cheap),
        "plain_default": lambda s: plain(s, dflt[0], dflt[1], 235),
        "scram_default": lambda s: scram(s, *dflt),
        "fail_plain": lambda s: plain(s, cheap[0], cheap[1] + "-wrong", 535),
    }
    res = {k: [] for k in KINDS}
    load0, t0 = loadavg(), time.time()
    for i in range(WARM + n):
        for k in KINDS:
            s = Session(port, ctx)
            try:
                w = do[k](s)
            finally:
                s.close()
            if i >= WARM:
                res[k].append(w * 1e6)
    doc = {"label": label, "round": rnd, "n": n, "start": t0, "seconds": time.time() - t0,
           "load_before": load0, "load_after": loadavg(), "us": res}
    pathlib.Path(out).write_text(json.dumps(doc))
    print("%s round %d: %s" % (label, rnd, " ".join(
        "%s p50=%.0f" % (k, pct(res[k], 50)) for k in KINDS)), file=sys.stderr)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


VARIANTS = [("file", "(a) single node, passwd file"),
            ("pgsql", "(b) single node, pgsql backend"),
            ("cluster", "(c) passwd file + [cluster] Redis")]


def report(d):
    runs = [json.loads(p.read_text()) for p in sorted(pathlib.Path(d).glob("*.json"))]
    runs.sort(key=lambda r: r["start"])
    print("Runs in order (label, round, n per kind, load average 1/5/15 min before -> after):\n")
    for r in runs:
        print("- %s %d: n=%d, %.0f s, load %s -> %s" % (
            r["label"], r["round"], r["n"], r["seconds"], "/".join(r["load_before"]),
            "/".join(r["load_after"])))
    pooled = {}
    for v, _ in VARIANTS:
        pooled[v] = {k: [x for r in runs if r["label"] == v for x in r["us"][k]] for k in KINDS}
    print("\nPer run, p50 / p99 in microseconds:\n")
    print("| kind | " + " | ".join("%s %d" % (r["label"], r["round"]) for r in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for k in KINDS:
        print("| %s | " % k + " | ".join(
            "%.0f / %.0f" % (pct(r["us"][k], 50), pct(r["us"][k], 99)) for r in runs) + " |")
    print("\nAll runs of a variant pooled, p50 / p99 in microseconds, and the difference from (a):\n")
    names = [v for v, _ in VARIANTS if pooled[v][KINDS[0]]]
    print("| kind | " + " | ".join(dict(VARIANTS)[v] for v in names) + " | " + " | ".join(
        "%s - file p50 / p99" % v for v in names if v != "file") + " |")
    print("|---" * (1 + len(names) * 2 - 1) + "|")
    for k in KINDS:
        cells = ["%.0f / %.0f" % (pct(pooled[v][k], 50), pct(pooled[v][k], 99)) for v in names]
        diffs = []
        if "file" in names:
            base = pooled["file"][k]
            for v in names:
                if v == "file":
                    continue
                diffs.append("%+.0f / %+.0f" % (pct(pooled[v][k], 50) - pct(base, 50),
                                                pct(pooled[v][k], 99) - pct(base, 99)))
        print("| %s | " % k + " | ".join(cells + diffs) + " |")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "measure" and len(sys.argv) == 12:
        measure(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)

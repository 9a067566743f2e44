#!/usr/bin/python3
"""bench/delivery.py: end-to-end delivery throughput of smtpgate.

    /usr/bin/python3 bench/delivery.py [--smtpgate build/smtpgate] [--messages 2000]
        [--sessions 8] [--size 2048] [--slow-ms 50] [--concurrency 10]

Starts a private smtpgate (submission with STARTTLS + AUTH PLAIN, [relay] to a smarthost
on loopback) and an aiosmtpd sink as that smarthost (STARTTLS, PIPELINING, no AUTH), submits
--messages messages with bench/loadgen, and measures:

  none        no [relay]: the submission rate alone (the spool fills);
  fast sink   messages/s from the first submission until the sink has them all (and
              the queue is empty), and the submission rate meanwhile;
  slow sink   the same with a sink that waits --slow-ms before answering DATA: the
              queue depth over time (max), and how long the queue takes to drain;
  backlog     no submission: the server starts on a copy of the spool `none` filled
              (--messages queued) and delivers it to a fast sink: the drain rate.

Figures, never pass/fail. Everything lives under a fresh /tmp directory, removed at the
end (BENCH_KEEP=1 keeps it). Needs python3-aiosmtpd and openssl.
"""
import argparse
import asyncio
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from aiosmtpd.controller import Controller

HERE = pathlib.Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class Sink:
    def __init__(self, cert, key, delay_ms):
        self.count = 0
        self.conns = 0  # connections that delivered at least one message
        self.first = self.last = None
        self.delay = delay_ms / 1000.0
        self.lock = threading.Lock()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     tls_context=ctx, server_hostname="sink.bench.test")
        self.controller.start()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # as Postfix and other real smarthosts do
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.count += 1
            if not getattr(server, "bench_counted", False):
                server.bench_counted = True  # one SMTP object per connection
                self.conns += 1
            now = time.monotonic()
            self.first = self.first or now
            self.last = now
        return "250 2.0.0 ok"

    def stop(self):
        self.controller.stop()


def queue_depth(spool):
    try:
        return len(os.listdir(spool / "queue"))
    except OSError:
        return 0


def run(args, base, label, delay_ms, relay=True, backlog=None):
    """backlog: a spool to start from (copied) instead of submitting."""
    cert, key = base / "cert.pem", base / "key.pem"
    sink = Sink(str(cert), str(key), delay_ms)
    port = free_port()
    d = base / label
    d.mkdir()
    (d / "password").write_text("bench-password\n")
    conf = d / "smtpgate.conf"
    conf.write_text(f"""\
[server]
hostname = smtpgate.bench.test
spool = spool
threads = auto
log = smtpgate.log

[listen submission]
address = 127.0.0.1:{port}
tls = starttls
auth = required

[tls]
cert = {cert}
key = {key}

[auth]
mechanisms = PLAIN
backend = file:users

[limits]
quota_messages_per_day = 0
quota_recipients_per_day = 0
connection_rate_per_ip = 100000
connections_per_ip = 10000

""" + (f"""
[relay]
route = smarthost 127.0.0.1:{sink.port}
ca = {cert}
concurrency = {args.concurrency}
retry_min = 1s
""" if relay else ""))
    subprocess.run([args.smtpgate, "user", "add", "bench@example.test", "-f", str(d / "users"),
                    "--password-stdin"], input="bench-password\n", text=True, check=True,
                   capture_output=True)
    if backlog is not None:
        shutil.copytree(backlog, d / "spool")
    proc = subprocess.Popen([args.smtpgate, "serve", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=open(d / "stderr.log", "wb"))
    spool = d / "spool"
    samples = []
    try:
        wait_port(port)
        t0 = time.monotonic()
        lg = subprocess.Popen(["true"], stdout=subprocess.PIPE, text=True) if backlog is not None else subprocess.Popen(
            [str(HERE / "loadgen"), "--port", str(port), "--user", "bench@example.test",
             "--password-file", str(d / "password"), "--cafile", str(cert),
             "--sni", "bench.test", "--sessions", str(args.sessions),
             "--total", str(args.messages), "--size", str(args.size),
             "--from", "bench@example.test", "--to", "someone@example.net", "--kv"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        submitted_at = None
        deadline = t0 + args.max_time
        while time.monotonic() < deadline:
            depth = queue_depth(spool)
            samples.append((time.monotonic() - t0, depth, sink.count))
            if submitted_at is None and lg.poll() is not None:
                submitted_at = time.monotonic()
            if submitted_at is not None and (not relay or
                                             (sink.count >= args.messages and depth == 0)):
                break
            time.sleep(0.05)
        t_end = time.monotonic()
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        out, err = lg.communicate(timeout=30)
        kv = dict(line.split("=", 1) for line in out.split() if "=" in line)
        ok = int(kv.get("messages_ok", kv.get("ok", "0")) or 0) if backlog is None else 0
        total = t_end - t0
        sub = (submitted_at or t_end) - t0
        return {
            "label": label,
            "delay_ms": delay_ms,
            "submitted": ok,
            "delivered": sink.count,
            "submit_s": round(sub, 2),
            "submit_rate": round(ok / sub, 1) if sub > 0 else 0,
            "end_to_end_s": round(total, 2),
            "end_to_end_rate": round(sink.count / total, 1) if total > 0 else 0,
            "sink_connections": sink.conns,
            "max_queue_depth": max(s[1] for s in samples) if samples else 0,
            "drain_after_submit_s": round(t_end - (submitted_at or t_end), 2),
            "smtpgate_cpu_ms_per_msg": round(cpu_s * 1000 / max(sink.count if relay else ok, 1),
                                             2),
            "loadgen_errors": kv.get("errors", kv.get("messages_failed", "?")),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sink.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smtpgate", default=str(HERE.parent / "build" / "smtpgate"))
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--slow-ms", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--max-time", type=float, default=600)
    args = ap.parse_args()
    if not (HERE / "loadgen").exists():
        subprocess.run(["make", "-C", str(HERE), "loadgen"], check=True)
    base = pathlib.Path(tempfile.mkdtemp(prefix="smtpgate-bench-delivery."))
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(base / "key.pem"),
                        "-out", str(base / "cert.pem"), "-days", "30", "-subj",
                        "/CN=bench.test", "-addext",
                        "subjectAltName=DNS:bench.test,IP:127.0.0.1"],
                       check=True, capture_output=True)
        for label, delay, relay, backlog in (
                ("none", 0, False, None), ("fast", 0, True, None),
                ("slow", args.slow_ms, True, None),
                ("backlog", 0, True, base / "none" / "spool")):
            r = run(args, base, label, delay, relay, backlog)
            print(" ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

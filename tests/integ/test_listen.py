"""Listening addresses: a second server (or any other process) on an address
a server already listens on is refused at start with a message that names
the address and its holder, instead of SO_REUSEPORT silently splitting the
connections (and the mail) between the two; the per-thread sockets of one
server still share their address. IPv6 (`[::1]:PORT`, `[::]:PORT`) beside
IPv4 on the same port."""
import json
import os
import smtplib
import socket
import subprocess

import pytest

from conftest import SMTPGATE, Server, free_port, wait_port


def mx_conf(d, address, extra=""):
    """A plain MX-only config in folder d listening on address."""
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "smtpgate.conf"
    conf.write_text(f"""\
[server]
hostname = mail.example.test
spool = spool
threads = 2
log = {d / 'smtpgate.log'}
user = root

[listen mx]
address = {address}
tls = none
auth = off
relay = local
{extra}
[domains]
local = example.test
""")
    return conf


def serve(conf, timeout=30):
    return subprocess.run([SMTPGATE, "serve", "-c", str(conf)], capture_output=True,
                          text=True, timeout=timeout)


def send_plain(port, n, host="127.0.0.1"):
    for i in range(n):
        with smtplib.SMTP(host, port, timeout=10) as c:
            c.sendmail("a@example.net", ["bob@example.test"],
                       f"Subject: m{i}\r\n\r\nbody {i}\r\n")


def queued_ids(conf):
    r = subprocess.run([SMTPGATE, "queue", "list", "-c", str(conf), "--json"],
                       capture_output=True, text=True, check=True, timeout=30)
    return [m["id"] for m in json.loads(r.stdout)["messages"]]


@pytest.mark.parametrize("form", ["same", "wildcard"])
def test_second_server_on_same_address_is_refused(tmp_path, pki, make_server, form):
    first = make_server(threads=2).start()
    address = f"127.0.0.1:{first.mx}" if form == "same" else f":{first.mx}"
    conf = mx_conf(tmp_path / "second", address)
    r = serve(conf)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"[listen mx] (line 8): address {address} is already in use" in r.stderr, r.stderr
    # the holder, found through /proc/net/tcp and /proc/PID/fd
    assert f"held by pid {first.proc.pid}, smtpgate" in r.stderr, r.stderr
    # all mail goes to the first server: both of its threads accept it
    send_plain(first.mx, 6)
    assert len(first.queued()) == 6
    assert not (tmp_path / "second" / "spool").exists() or queued_ids(conf) == []


def test_other_process_holder_is_named(tmp_path):
    """A listener that is not smtpgate and does not use SO_REUSEPORT."""
    port = free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        r = serve(mx_conf(tmp_path, f"127.0.0.1:{port}"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"address 127.0.0.1:{port} is already in use" in r.stderr, r.stderr
    assert f"held by pid {os.getpid()}, " in r.stderr, r.stderr


def test_reuseport_holder_is_refused_too(tmp_path, pki, make_server):
    """A process of the same user that binds with SO_REUSEPORT after the
    server cannot be kept out by the server, but a server started after such
    a process is refused: the check binds without SO_REUSEPORT."""
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen(1)
        r = serve(mx_conf(tmp_path, f"127.0.0.1:{port}"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "is already in use by another process" in r.stderr


def test_restart_after_stop_binds_again(tmp_path, pki, make_server):
    """Connections of the first run left in TIME_WAIT do not count as a holder."""
    s = make_server(threads=2).start()
    send_plain(s.mx, 2)
    assert s.stop() == 0
    s.start()
    send_plain(s.mx, 1)
    assert len(s.queued()) == 3


def two_family_conf(d, v4, v6):
    """mx_conf with a second listener, [listen mx6], on v6."""
    return mx_conf(d, v4, extra=f"""
[listen mx6]
address = {v6}
tls = none
auth = off
relay = local
""")


def test_ipv4_and_ipv6_on_one_port(tmp_path):
    """127.0.0.1:PORT and [::1]:PORT side by side: the IPv6 socket is
    IPv6-only, so the two binds do not collide, and each takes its family."""
    port = free_port()
    conf = two_family_conf(tmp_path, f"127.0.0.1:{port}", f"[::1]:{port}")
    p = subprocess.Popen([SMTPGATE, "serve", "-c", str(conf)], stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc=p)
        send_plain(port, 2, host="127.0.0.1")
        send_plain(port, 3, host="::1")
        assert len(queued_ids(conf)) == 5
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    conns = [json.loads(line) for line in (tmp_path / "smtpgate.log").read_text().splitlines()]
    conns = [(e["listener"], e["client"]) for e in conns if e["event"] == "connect"]
    # wait_port's own connection came through mx too
    assert conns.count(("mx6", "::1")) == 3, conns
    assert conns.count(("mx", "127.0.0.1")) == 3, conns
    assert len(conns) == 6, conns


def test_wildcard_forms_pass_check(tmp_path):
    """`:PORT` (every IPv4 address) with `[::]:PORT` (every IPv6 address) is
    a valid pair; the checks bind nothing that stays."""
    port = free_port()
    r = subprocess.run([SMTPGATE, "serve", "--check", "-c",
                        str(two_family_conf(tmp_path, f":{port}", f"[::]:{port}"))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "configuration OK" in r.stdout + r.stderr


def _in_netns_without_ipv6(cmd):
    """cmd in a new user and network namespace whose IPv6 is disabled by
    sysctl, as on a host configured without IPv6; None where namespaces are
    not allowed."""
    script = ("ip link set lo up && sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 "
              "net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1 && "
              'exec "$@"')
    try:
        r = subprocess.run(["unshare", "-rn", "sh", "-c", script, "sh", *cmd],
                           capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return None
    if "unshare:" in r.stderr or "sysctl:" in r.stderr:
        return None
    return r


def test_ipv6_address_on_host_without_ipv6_is_named(tmp_path):
    port = free_port()
    conf = two_family_conf(tmp_path, f"127.0.0.1:{port}", f"[::1]:{port}")
    r = _in_netns_without_ipv6([SMTPGATE, "serve", "-c", str(conf)])
    if r is None:
        pytest.skip("no user/network namespaces here")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert (f"[listen mx6] (line 14): cannot bind address [::1]:{port}: Cannot assign "
            "requested address (no interface has this IPv6 address: is IPv6 disabled on "
            "this host?)") in r.stderr, r.stderr


def test_ipv6_wildcard_on_host_without_ipv6_runs(tmp_path):
    """`[::]:PORT` still binds where IPv6 is disabled by sysctl (it receives
    nothing), so the example configuration starts there: the server runs
    until SIGTERM and serves IPv4."""
    port = free_port()
    conf = two_family_conf(tmp_path, f"127.0.0.1:{port}", f"[::]:{port}")
    r = _in_netns_without_ipv6(["timeout", "--preserve-status", "-s", "TERM", "3", SMTPGATE, "serve", "-c", str(conf)])
    if r is None:
        pytest.skip("no user/network namespaces here")
    assert r.returncode == 0, (r.stdout, r.stderr)
    events = [json.loads(line)["event"]
              for line in (tmp_path / "smtpgate.log").read_text().splitlines()]
    assert "start" in events and "stop" in events, events

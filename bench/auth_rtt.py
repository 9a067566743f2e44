#!/usr/bin/python3
"""bench/auth_rtt.py PERF_SCRIPT_TXT: pairs the smtp and auth processes' sendmsg/recvmsg
(perf script of raw_syscalls, see auth_rtt.sh) into round trips; prints median/p90 in us.

smtp: an auth channel is a descriptor the smtp process both sendmsg()s to and recvmsg()s
from (one per loop thread since 2026-12-07; before, one for all, read by a reader thread).
A round trip: a sendmsg on it -> the next recvmsg returning > 0 on it; the pairs of every
channel together, in time order.
A request with no answer (record-use) is followed by another request before any answer:
only the last request before an answer is paired. The auth side is paired the same way
(recvmsg returning > 0 -> the next sendmsg on that descriptor)."""
import re
import sys
from collections import Counter, defaultdict

line_re = re.compile(
    r"^\s*(\S+)\s+(\d+)\s+(\d+\.\d+):\s+raw_syscalls:sys_(enter|exit):\s+NR (\d+) (.*)$")
events = []  # (time, comm, tid, kind, nr, fd or ret)
last_fd = {}
for line in open(sys.argv[1]):
    m = line_re.match(line)
    if not m:
        continue
    comm, tid, t, kind, nr, rest = m.group(1), int(m.group(2)), float(m.group(3)), \
        m.group(4), int(m.group(5)), m.group(6)
    if kind == "enter":
        fd = int(rest.strip("()").split(",")[0], 16)
        last_fd[tid] = fd
        if nr == 46:
            events.append((t, comm, tid, "send", fd, 0))
    else:
        ret = int(rest.split("=")[1])
        if nr == 47 and ret > 0 and tid in last_fd:
            events.append((t, comm, tid, "recv", last_fd[tid], ret))


def pairs(comm_prefix, first, second):
    """(start, duration in us) of every first -> second pair on one descriptor, over every
    descriptor that has both (one channel per smtp loop thread), in start order."""
    ev = [e for e in events if e[1].startswith(comm_prefix)]
    firsts = {e[4] for e in ev if e[3] == first}
    seconds = {e[4] for e in ev if e[3] == second}
    out = []
    for fd in firsts & seconds:
        pending = None
        for e in ev:
            if e[4] != fd:
                continue
            if e[3] == first:
                pending = e[0]
            elif e[3] == second and pending is not None:
                out.append((pending, (e[0] - pending) * 1e6))
                pending = None
    return [d for _, d in sorted(out)]


def stats(name, xs):
    if not xs:
        print("%-5s no pairs" % name)
        return
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    print("%-5s n=%d median=%.1f us p90=%.1f us min=%.1f us" % (name, len(xs), q(0.5), q(0.9), xs[0]))


rtt = pairs("smtpgate-smtp", "send", "recv")
auth = pairs("smtpgate-auth", "recv", "send")
stats("rtt", rtt)
stats("auth", auth)
if rtt and auth and len(rtt) == len(auth):
    stats("ipc", [a - b for a, b in zip(rtt, auth)])

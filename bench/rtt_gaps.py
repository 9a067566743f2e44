#!/usr/bin/python3
"""bench/rtt_gaps.py TRACE CLIENT_COMM SERVER_COMM: where the time of each AUTH round trip
goes, step by step, from a whole-system trace of every system call and context switch:

  perf record -a -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -e sched:sched_switch ...
  perf script -F comm,tid,cpu,time,event,trace > TRACE

A round trip runs from the client's sendmsg (enter) to its recvmsg (exit); each step is the
time between two consecutive events of the client or the server (system call enter or exit,
switch away), and the median of each step over the round trips that have it is printed in
order. smtpgate: CLIENT_COMM smtpgate-smtp, SERVER_COMM smtpgate-auth (bench/smtpgate.sh,
one session at a time, one core); the floor: ipc_floor and ipc_floor-srv (IPC_FLOOR_MODE=check).
Every traced event costs about a microsecond: compare traces with traces. A figure, never a
test (RESULTS.md)."""
import collections
import re
import statistics
import sys

NAMES = {0: "read", 1: "write", 46: "sendmsg", 47: "recvmsg", 202: "futex", 232: "epoll_wait",
         233: "epoll_ctl", 262: "fstatat"}


def events(path, client, server):
    """(time us, 'C' or 'S', 'enter'/'exit'/'switch', syscall number) of client and server."""
    who = {client: "C", server: "S"}
    for line in open(path):
        m = re.match(r"\s*(\S+)\s+\d+\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s+(.*)", line)
        if not m or m.group(1) not in who:
            continue
        comm, t, ev, rest = m.groups()
        if ev.startswith("raw_syscalls"):
            yield (float(t) * 1e6, who[comm], "enter" if "enter" in ev else "exit",
                   int(rest.split()[1]))
        elif ev == "sched:sched_switch":
            yield (float(t) * 1e6, who[comm], "switch", -1)


def name(e):
    return f"{e[1]}.{e[2]}" + (f":{NAMES.get(e[3], e[3])}" if e[2] != "switch" else "")


def main():
    ev = list(events(*sys.argv[1:4]))
    steps = collections.defaultdict(list)
    total, i = [], 0
    while i < len(ev):
        e = ev[i]
        if not (e[1] == "C" and e[2] == "enter" and e[3] == 46):
            i += 1
            continue
        j = i
        while j < len(ev) and not (ev[j][1] == "C" and ev[j][2] == "exit" and ev[j][3] == 47):
            j += 1
        trip = ev[i:j + 1]
        # a round trip with the server in it, not a stray one (no answer, a lost event)
        if j < len(ev) and any(x[1] == "S" for x in trip) and len(trip) < 40:
            total.append(trip[-1][0] - trip[0][0])
            for k in range(1, len(trip)):
                steps[(k, f"{name(trip[k - 1])} -> {name(trip[k])}")].append(
                    trip[k][0] - trip[k - 1][0])
        i = j + 1
    if not total:
        print("no round trips found")
        return
    print(f"{len(total)} round trips, median {statistics.median(total):.1f} us "
          "(C: client, S: server)")
    for (k, step), v in sorted(steps.items()):
        if len(v) >= len(total) / 2:
            print(f"{k:3d} {step:44s} n={len(v):5d} median={statistics.median(v):6.1f} us")


main()

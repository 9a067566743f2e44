#!/bin/sh
# bench/sysstat.sh: the kernel-side cost that callgrind.sh cannot see: system calls,
# context switches and CPU time (perf software events and the raw_syscalls tracepoint) per
# message, per server process, for a fixed amount of work.
#
#   sh bench/sysstat.sh BIN [LABEL]     (results: out/sysstat/LABEL.txt)
#
# One server; `perf stat -p` on each of its processes (all threads) around each workload:
# s1 (16 sessions, one message each, SYS_S1=1000 messages) and s100 (16 sessions, 100
# messages each, SYS_S100=8000 messages). CPU time is wall-clock-sensitive (load); the
# system call count is not, the context switches somewhat.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
[ $# -ge 1 ] || bench_die "usage: sysstat.sh BIN [LABEL]"
bin=$1
label=${2:-$(basename "$(dirname "$bin")")}
out=${SYS_OUT:-$here/out/sysstat}
mkdir -p "$out"
[ -x "$here/loadgen" ] || make -C "$here" loadgen >/dev/null
runas=
d=$(mktemp -d /tmp/smtpgate-bench-probe.XXXXXX)
printf '[server]\nhostname = probe.test\nspool = %s/spool\nuser = nobody\n' "$d" >"$d/c.conf"
"$bin" serve -c "$d/c.conf" --check 2>&1 | grep -q 'unknown key "user"' && runas=none
rm -rf "$d"
dir=$out/$label
rm -rf "$dir"
mkdir -p "$dir"
cat >"$dir/run.sh" <<EOR
#!/bin/sh
. "$here/common.sh"
for w in "s1 1 ${SYS_S1:-1000}" "s100 100 ${SYS_S100:-8000}"; do
	set -- \$w
	bench_settle \$BENCH_PIDS
	perfs=
	for p in \$(bench_tree_pids \$BENCH_PIDS); do
		perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p \$p \\
			-o "$dir/\$1.\$(cat /proc/\$p/comm).\$p" &
		perfs="\$perfs \$!"
	done
	sleep 1
	"$here/loadgen" --host \$BENCH_HOST --port \$BENCH_PORT --mode starttls --user \$BENCH_USER \\
		--password-file \$BENCH_PASSFILE --cafile \$BENCH_CAFILE --sni \$BENCH_SNI --tls13 --kv \\
		--sessions 16 --messages-per-session \$2 --total \$3 >"$dir/\$1.loadgen.kv" 2>&1
	bench_settle \$BENCH_PIDS
	kill -INT \$perfs
	wait
done
EOR
BENCH_RUNAS=$runas sh "$here/smtpgate.sh" "$bin" sh "$dir/run.sh" 2>"$dir/server.err" >/dev/null ||
	bench_log "$label: smtpgate.sh failed"
for w in s1 s100; do
	n=$(sed -n 's/^messages_ok=//p' "$dir/$w.loadgen.kv")
	s=$(sed -n 's/^sessions_ok=//p' "$dir/$w.loadgen.kv")
	for f in "$dir/$w".*.*; do
		case $f in *loadgen.kv) continue ;; esac
		proc=$(basename "$f" | cut -d. -f2)
		awk -F, -v n="$n" -v s="$s" -v w="$w" -v proc="$proc" -v label="$label" '
			$3 == "task-clock" { cpu = $1 }
			$3 == "context-switches" { cs = $1 }
			$3 == "raw_syscalls:sys_enter" { sc = $1 }
			END { printf "%s %s %s: messages %d sessions %d; per message: cpu_ms %.3f ctxsw %.2f syscalls %.1f\n", label, w, proc, n, s, cpu / n, cs / n, sc / n }' "$f"
	done
done | tee "$out/$label.txt"

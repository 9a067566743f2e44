#!/bin/sh
# bench/auth_rtt.sh: the AUTH round trip from smtpgate-smtp to smtpgate-auth, apart from
# the password hash.
#
#   sh bench/auth_rtt.sh BIN [N [LABEL]]   (N AUTHs, default 400; results in out/auth_rtt/LABEL-*;
#                                          RTT_ITERS="1" for the cheap check alone)
#
# One loadgen session at a time (no queueing), N sessions of STARTTLS + AUTH PLAIN + one
# message, twice: the user's SCRAM-SHA-256 keys made with 1 PBKDF2 iteration (the check
# costs almost no hashing) and with 4096 (the default). Meanwhile `perf record` takes the
# sendmsg/recvmsg system calls (raw_syscalls tracepoints, filtered in the kernel) of the
# smtp and auth processes; auth_rtt.py pairs them:
#   rtt     smtp: sendmsg of the request on the auth channel -> recvmsg of its answer
#   auth    auth: recvmsg of the request -> sendmsg of the answer (the check, hash included)
#   ipc     rtt - auth: the hand-offs (two socket hops, wake-ups, the reader thread)
# and loadgen's AUTH..235 median. A binary without the auth process (before privilege
# separation) gives only loadgen's figure. The tracepoints add about a microsecond per
# traced system call.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
[ $# -ge 1 ] || bench_die "usage: auth_rtt.sh BIN [N]"
bin=$1 n=${2:-400}
out=${RTT_OUT:-$here/out/auth_rtt}
mkdir -p "$out"
[ -x "$here/loadgen" ] || make -C "$here" loadgen >/dev/null
label=${3:-$(basename "$(dirname "$bin")")}

runas=
d=$(mktemp -d /tmp/smtpgate-bench-probe.XXXXXX)
printf '[server]\nhostname = probe.test\nspool = %s/spool\nuser = nobody\n' "$d" >"$d/c.conf"
"$bin" serve -c "$d/c.conf" --check 2>&1 | grep -q 'unknown key "user"' && runas=none
rm -rf "$d"

for iter in ${RTT_ITERS:-1 4096}; do
	dir=$out/$label-$iter
	rm -rf "$dir"
	mkdir -p "$dir"
	cat >"$dir/run.sh" <<EOR
#!/bin/sh
pids=\$(ps -o pid= --ppid \$BENCH_PIDS | tr -d ' ' | paste -sd, -)
# first untraced, timed by smtpgate itself (smtpgate_auth_check_seconds, when the binary
# has it), then traced
scrape() { curl -s "http://127.0.0.1:\$BENCH_ADMIN_PORT/metrics" >"\$1" 2>/dev/null || :; }
scrape "$dir/metrics.0"
"$here/loadgen" --host \$BENCH_HOST --port \$BENCH_PORT --mode starttls --user \$BENCH_USER \\
	--password-file \$BENCH_PASSFILE --cafile \$BENCH_CAFILE --sni \$BENCH_SNI --tls13 --kv \\
	--sessions 1 --messages-per-session 1 --total $n >"$dir/loadgen0.kv" 2>"$dir/loadgen0.err"
scrape "$dir/metrics.1"
perf=
if [ -n "\$pids" ]; then
	perf record -q -o "$dir/perf.data" \\
		-e raw_syscalls:sys_enter --filter 'id == 46 || id == 47' \\
		-e raw_syscalls:sys_exit --filter 'id == 46 || id == 47' -p "\$pids" 2>"$dir/perf.err" &
	perf=\$!
	sleep 2
fi
"$here/loadgen" --host \$BENCH_HOST --port \$BENCH_PORT --mode starttls --user \$BENCH_USER \\
	--password-file \$BENCH_PASSFILE --cafile \$BENCH_CAFILE --sni \$BENCH_SNI --tls13 --kv \\
	--sessions 1 --messages-per-session 1 --total $n >"$dir/loadgen.kv" 2>"$dir/loadgen.err"
if [ -n "\$perf" ]; then
	kill -INT \$perf
	wait \$perf
	ps -o pid=,comm= --ppid \$BENCH_PIDS >"$dir/procs"
fi
EOR
	BENCH_ADMIN=1 BENCH_RUNAS=$runas BENCH_SCRAM_ITER=$iter sh "$here/smtpgate.sh" "$bin" \
		sh "$dir/run.sh" 2>"$dir/server.err" >/dev/null || bench_log "$label $iter: smtpgate.sh failed"
	echo "== $label, SCRAM iterations $iter: loadgen messages_ok=$(sed -n 's/^messages_ok=//p' \
"$dir/loadgen.kv") auth_p50_ms=$(sed -n 's/^auth_p50_ms=//p' "$dir/loadgen.kv") (traced), \
$(sed -n 's/^auth_p50_ms=//p' "$dir/loadgen0.kv") (untraced)"
	if [ -s "$dir/metrics.1" ]; then
		/usr/bin/python3 "$here/metrics_hist.py" "$dir/metrics.0" "$dir/metrics.1" \
			smtpgate_auth_check_seconds 'request="plain"' | sed 's/^/untraced /'
	fi
	if [ -s "$dir/perf.data" ]; then
		perf script -i "$dir/perf.data" -F comm,tid,time,event,trace 2>/dev/null >"$dir/perf.txt"
		/usr/bin/python3 "$here/auth_rtt.py" "$dir/perf.txt" || true
	fi
done

if [ "${RTT_FLOOR:-1}" != 0 ] && [ -x "$here/ipc_floor" ] && command -v perf >/dev/null; then
	for mode in quiet session; do
		case $mode in
		quiet) envs= ;;
		session) envs="IPC_FLOOR_EC=8 IPC_FLOOR_POLLUTE=16384 IPC_FLOOR_FSYNC=1" ;;
		esac
		echo "== floor ($mode): bench/ipc_floor ${RTT_FLOOR_N:-1000} 2, traced as above"
		# shellcheck disable=SC2086
		env $envs perf record -q -o "$out/$label-floor.data" \
			-e raw_syscalls:sys_enter --filter 'id == 46 || id == 47' \
			-e raw_syscalls:sys_exit --filter 'id == 46 || id == 47' \
			-- "$here/ipc_floor" "${RTT_FLOOR_N:-1000}" 2 2>/dev/null | sed -n '3,$p'
		rm -f "$out/$label-floor.data"
	done
fi

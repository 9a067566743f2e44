#!/bin/sh
# bench/measure.sh: runs the benchmark scenarios against the server described by the BENCH_*
# environment (set by bench/postfix.sh or bench/smtpgate.sh) and writes key=value figures.
#
#   LOADGEN=bench/loadgen BENCH_OUT=out/NAME.kv sh bench/measure.sh
#
# Scenarios, in this order (all over STARTTLS + AUTH PLAIN, TLS 1.3, 4 KiB messages):
#   s1    BENCH_SESSIONS (16) concurrent sessions, one message each (new TLS + AUTH per
#         message), for BENCH_DURATION (15) seconds.
#   s100  the same with 100 messages per session.
#   idle  BENCH_IDLE (2000) authenticated TLS sessions held open: server memory before and
#         after (VmRSS, and Pss from smaps_rollup, summed over the server's process tree)
#         -> KiB per idle session; server CPU for the setups -> ms per session setup.
#         It runs last, so the baseline already holds whatever the load runs grew (pools,
#         caches) and the figure is the cost of one more idle session.
# Server CPU is utime+stime(+cutime+cstime) from /proc/PID/stat over the process trees in
# BENCH_PIDS, sampled before the run and after the server has gone quiet (bench_settle).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

: "${BENCH_NAME:?run me through postfix.sh or smtpgate.sh}"
LOADGEN=${LOADGEN:-$here/loadgen}
out=${BENCH_OUT:-/dev/stdout}
sessions=${BENCH_SESSIONS:-16}
duration=${BENCH_DURATION:-15}
idle=${BENCH_IDLE:-2000}
threads=${BENCH_THREADS:-1}
[ -x "$LOADGEN" ] || bench_die "no loadgen at $LOADGEN (make -C bench loadgen)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((idle + 100)) ] || bench_die "ulimit -n $(ulimit -n) is too low for $idle sessions"

tmp=$(mktemp -d /tmp/smtpgate-bench-measure.XXXXXX)
lgpid=
cleanup() {
	if [ -n "$lgpid" ] && kill -0 "$lgpid" 2>/dev/null; then
		kill "$lgpid" 2>/dev/null
		sleep 1
		kill -9 "$lgpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

lg="$LOADGEN --host $BENCH_HOST --port $BENCH_PORT --mode $BENCH_MODE --user $BENCH_USER
	--password-file $BENCH_PASSFILE --cafile $BENCH_CAFILE --sni $BENCH_SNI --tls13
	--threads $threads --kv"

# kv FILE KEY: the value of KEY in a key=value file (empty if absent).
kv() {
	sed -n "s/^$2=//p" "$1" | head -n1
}

{
	echo "name=$BENCH_NAME"
	echo "version=${BENCH_VERSION:-unknown}"
	echo "sessions=$sessions"
	echo "duration=$duration"
	echo "idle_target=$idle"
	echo "loadgen_threads=$threads"
} >"$tmp/result"

# --- throughput: run_load TAG MESSAGES_PER_SESSION
run_load() {
	bench_settle $BENCH_PIDS
	c0=$(bench_tree_cpu $BENCH_PIDS)
	b0=$(bench_sys_busy)
	bench_log "$BENCH_NAME: $sessions sessions x $2 messages/session for $duration s"
	$lg --sessions "$sessions" --messages-per-session "$2" --duration "$duration" \
		--max-time $((duration * 4 + 60)) >"$tmp/$1.kv" 2>"$tmp/$1.err" || true
	b1=$(bench_sys_busy)
	cl1=$(bench_tree_cpu $BENCH_PIDS)
	bench_settle $BENCH_PIDS
	c1=$(bench_tree_cpu $BENCH_PIDS)
	ok=$(kv "$tmp/$1.kv" messages_ok)
	ok=${ok:-0}
	for k in messages_ok messages_failed messages_per_s lat_p50_ms lat_p99_ms sess_p50_ms \
		sess_p99_ms setup_p50_ms tls_p50_ms auth_p50_ms client_cpu_s errors elapsed_s; do
		echo "$1_$k=$(kv "$tmp/$1.kv" $k)"
	done >>"$tmp/result"
	sed -n "s/^errors_/$1_errors_/p" "$tmp/$1.kv" >>"$tmp/result"
	# CPU that neither the server nor loadgen used while loadgen ran: other tenants.
	awk -v b0="$b0" -v b1="$b1" -v c0="$c0" -v c1="$cl1" -v l="$(kv "$tmp/$1.kv" client_cpu_s)" \
		-v t="$1" 'BEGIN { printf "%s_other_cpu_s=%.1f\n", t, (b1 - b0) - (c1 - c0) - l }' >>"$tmp/result"
	echo "$1_server_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" >>"$tmp/result"
	if [ "$ok" -gt 0 ]; then
		awk -v a="$c0" -v b="$c1" -v n="$ok" -v t="$1" 'BEGIN { printf "%s_server_cpu_ms_per_msg=%.3f\n", t, (b - a) * 1000 / n }' >>"$tmp/result"
	fi
	bench_log "$BENCH_NAME: $(kv "$tmp/$1.kv" messages_per_s) messages/s, p50 $(kv "$tmp/$1.kv" lat_p50_ms) ms, errors $(kv "$tmp/$1.kv" errors)"
	[ -s "$tmp/$1.err" ] && head -n 5 "$tmp/$1.err" >&2
	return 0
}
run_load s1 1
run_load s100 100

# --- idle: memory per idle authenticated TLS session
if [ "$idle" -gt 0 ]; then
	bench_settle $BENCH_PIDS
	set -- $(bench_tree_mem $BENCH_PIDS)
	rss0=$1 pss0=$2 n0=$3
	cpu0=$(bench_tree_cpu $BENCH_PIDS)
	bench_log "$BENCH_NAME: opening $idle idle sessions (server: $n0 processes, RSS $rss0 KiB)"
	: >"$tmp/idle.kv"
	$lg --idle "$idle" --hold 600 --ramp 32 --max-time 600 >"$tmp/idle.kv" 2>"$tmp/idle.err" &
	lgpid=$!
	i=0
	while ! grep -q '^established' "$tmp/idle.kv" && kill -0 "$lgpid" 2>/dev/null &&
		[ $i -lt 3000 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	est=$(sed -n 's/^established \([0-9]*\).*/\1/p' "$tmp/idle.kv")
	est=${est:-0}
	sleep 2 # let the server finish whatever follows the last 235
	set -- $(bench_tree_mem $BENCH_PIDS)
	rss1=$1 pss1=$2 n1=$3
	cpu1=$(bench_tree_cpu $BENCH_PIDS)
	kill -USR1 "$lgpid" 2>/dev/null || true
	wait "$lgpid" || true
	lgpid=
	bench_log "$BENCH_NAME: $est sessions established; server: $n1 processes, RSS $rss1 KiB"
	{
		echo "idle_established=$est"
		echo "idle_procs_before=$n0"
		echo "idle_procs_after=$n1"
		echo "idle_rss_before_kib=$rss0"
		echo "idle_rss_after_kib=$rss1"
		echo "idle_pss_before_kib=$pss0"
		echo "idle_pss_after_kib=$pss1"
		echo "idle_errors=$(kv "$tmp/idle.kv" errors)"
		echo "idle_setup_p50_ms=$(kv "$tmp/idle.kv" setup_p50_ms)"
		if [ "$est" -gt 0 ]; then
			awk -v a="$rss0" -v b="$rss1" -v n="$est" 'BEGIN { printf "idle_rss_kib_per_session=%.1f\n", (b - a) / n }'
			awk -v a="$pss0" -v b="$pss1" -v n="$est" 'BEGIN { printf "idle_pss_kib_per_session=%.1f\n", (b - a) / n }'
			awk -v a="$cpu0" -v b="$cpu1" -v n="$est" 'BEGIN { printf "idle_setup_cpu_ms=%.3f\n", (b - a) * 1000 / n }'
		fi
	} >>"$tmp/result"
fi


cat "$tmp/result" >"$out"

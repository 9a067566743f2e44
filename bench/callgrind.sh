#!/bin/sh
# bench/callgrind.sh: instructions per message, deterministic, summed over every server
# process (parent, smtpgate-auth, smtpgate-smtp [, smtpgate-relay]), for comparing two
# binaries on a shared machine where wall-clock figures are noise.
#
#   sh bench/callgrind.sh BIN [LABEL]       results: out/callgrind/LABEL.kv (+ cg.* files)
#
# Per workload the server is started twice under `valgrind --tool=callgrind
# --trace-children=yes` (bench/smtpgate.sh, BENCH_WRAP) and driven by loadgen with a small
# and a large count; instructions per message = (large - small) / (count difference), so
# start-up and shut-down cancel out. Workloads (4 concurrent sessions, STARTTLS, TLS 1.3,
# AUTH PLAIN, 4 KiB messages):
#   s1    one message per session          CG_S1="20 80" messages
#   s100  100 messages per session         CG_S100="400 1200" messages
#   idle  authenticated idle sessions      CG_IDLE="10 50" sessions (per session set-up)
# Needs bench/exec_shim.so (make -C bench exec_shim.so): the children are started with
# execve("/proc/self/exe"), which under valgrind is valgrind itself; and valgrind 3.19
# cannot run the seccomp system call, so the shim builds the smtp/relay filter without
# loading it (BENCH_FAKE_SECCOMP=1; bench-only, never in a server). Callgrind counts
# user-space instructions only: system calls, context switches and the seccomp filter run
# in the kernel and are not in these figures (see pairs.sh, perf stat for those).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
[ $# -ge 1 ] || bench_die "usage: callgrind.sh BIN [LABEL]"
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
label=${2:-$(basename "$(dirname "$bin")")}
out=${CG_OUT:-$here/out/callgrind}
[ -x "$here/loadgen" ] || make -C "$here" loadgen >/dev/null
[ -f "$here/exec_shim.so" ] || make -C "$here" exec_shim.so >/dev/null
mkdir -p "$out"
chmod 1777 "$out" # the smtp process writes its profile as the unprivileged user

runas=
d=$(mktemp -d /tmp/smtpgate-bench-probe.XXXXXX)
printf '[server]\nhostname = probe.test\nspool = %s/spool\nuser = nobody\n' "$d" >"$d/c.conf"
"$bin" serve -c "$d/c.conf" --check 2>&1 | grep -q 'unknown key "user"' && runas=none
rm -rf "$d"

kv=$out/$label.kv
: >"$kv"
# one TAG ARGS...: a fresh server under callgrind, loadgen with ARGS, the sums per process
one() {
	tag=$1
	shift
	dir=$out/$label-$tag
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 1777 "$dir"
	cat >"$dir/run.sh" <<EOR
#!/bin/sh
"$here/loadgen" --host \$BENCH_HOST --port \$BENCH_PORT --mode starttls --user \$BENCH_USER \\
	--password-file \$BENCH_PASSFILE --cafile \$BENCH_CAFILE --sni \$BENCH_SNI --tls13 --kv \\
	--timeout 120 --max-time 1800 $* >"$dir/loadgen.kv" 2>"$dir/loadgen.err"
EOR
	BENCH_RUNAS=$runas BENCH_START_WAIT=180 BENCH_STOP_WAIT=120 BENCH_EXE=$bin \
		BENCH_WRAP="env LD_PRELOAD=$here/exec_shim.so BENCH_FAKE_SECCOMP=1 valgrind \
--tool=callgrind --trace-children=yes --vgdb=no --callgrind-out-file=$dir/cg.%p" \
		sh "$here/smtpgate.sh" "$bin" sh "$dir/run.sh" 2>"$dir/server.err" >/dev/null ||
		bench_log "$tag: smtpgate.sh failed (see $dir/server.err)"
	ok=$(sed -n 's/^messages_ok=//p' "$dir/loadgen.kv")
	est=$(sed -n 's/^established \([0-9]*\).*/\1/p' "$dir/loadgen.kv")
	echo "${tag}_ok=${ok:-0}" >>"$kv"
	echo "${tag}_established=${est:-0}" >>"$kv"
	echo "${tag}_errors=$(sed -n 's/^errors=//p' "$dir/loadgen.kv")" >>"$kv"
	echo "${tag}_sessions=$(sed -n 's/^sessions_ok=//p' "$dir/loadgen.kv")" >>"$kv"
	for f in "$dir"/cg.*; do
		[ -s "$f" ] || continue
		role=$(sed -n 's/^cmd: .*--child \([a-z]*\).*/\1/p' "$f")
		echo "${tag}_ir_${role:-parent}=$(sed -n 's/^summary: //p' "$f")"
	done >>"$kv"
	bench_log "$label $tag: $(grep "^${tag}_" "$kv" | tr '\n' ' ')"
}

set -- ${CG_S1:-20 80}
one s1a --sessions 4 --messages-per-session 1 --total "$1"
one s1b --sessions 4 --messages-per-session 1 --total "$2"
set -- ${CG_S100:-400 1200}
one s100a --sessions 4 --messages-per-session 100 --total "$1"
one s100b --sessions 4 --messages-per-session 100 --total "$2"
set -- ${CG_IDLE:-10 50}
one idlea --idle "$1" --hold 1 --ramp 4
one idleb --idle "$2" --hold 1 --ramp 4
sh "$here/callgrind_report.sh" "$kv"

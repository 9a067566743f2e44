#!/bin/sh
# bench/pairs.sh: an interleaved wall-clock series of two smtpgate binaries, for
# comparisons on a shared machine where one run of each says little.
#
#   sh bench/pairs.sh BEFORE_BIN AFTER_BIN [PAIRS]     (PAIRS: 4)
#
# Runs `smtpgate.sh BIN measure.sh` in the order before, after, before, after, ...
# (PAIRS pairs), each result in out/pairs/N-SIDE.kv with the load average (1 min)
# read just before and just after the run, then prints the median and the range of each
# figure per side (bench/pairs_report.sh). BEFORE_BIN runs without `[server] user`
# (BENCH_RUNAS=none) when its --check rejects that key. Knobs: those of measure.sh
# (BENCH_DURATION, BENCH_SESSIONS, BENCH_IDLE, ...), PAIRS_OUT (out/pairs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
[ $# -ge 2 ] || bench_die "usage: pairs.sh BEFORE_BIN AFTER_BIN [PAIRS]"
before=$1 after=$2 pairs=${3:-4}
out=${PAIRS_OUT:-$here/out/pairs}
mkdir -p "$out"
[ -x "$here/loadgen" ] || make -C "$here" loadgen >/dev/null

# runas BIN: "none" when BIN does not know [server] user
runas() {
	d=$(mktemp -d /tmp/smtpgate-bench-probe.XXXXXX)
	printf '[server]\nhostname = probe.test\nspool = %s/spool\nuser = nobody\n' "$d" >"$d/c.conf"
	if "$1" serve -c "$d/c.conf" --check 2>&1 | grep -q 'unknown key "user"'; then
		echo none
	fi
	rm -rf "$d"
}

i=1
while [ $i -le "$pairs" ]; do
	for side in before after; do
		eval bin=\$$side
		f=$out/$i-$side.kv
		l0=$(cut -d' ' -f1 /proc/loadavg)
		bench_log "pair $i $side: $bin (load $l0)"
		BENCH_RUNAS=$(runas "$bin") LOADGEN=$here/loadgen BENCH_OUT=$f \
			sh "$here/smtpgate.sh" "$bin" sh "$here/measure.sh" ||
			bench_log "pair $i $side: failed"
		l1=$(cut -d' ' -f1 /proc/loadavg)
		{
			echo "side=$side"
			echo "pair=$i"
			echo "bin=$bin"
			echo "load_before=$l0"
			echo "load_after=$l1"
			echo "end=$(date -u +%H:%M:%S)"
		} >>"$f"
	done
	i=$((i + 1))
done
sh "$here/pairs_report.sh" "$out"

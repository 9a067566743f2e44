# bench/common.sh: helpers shared by the bench scripts (sourced, POSIX sh + bash-isms avoided).
# Everything listens on 127.0.0.1 only.

bench_log() {
	echo "bench: $*" >&2
}

bench_die() {
	echo "bench: error: $*" >&2
	exit 1
}

# bench_free_port: prints a TCP port on 127.0.0.1 that nothing listens on (20000..59999).
bench_free_port() {
	i=0
	while [ $i -lt 200 ]; do
		p=$(( 20000 + ( $(od -An -N2 -tu2 /dev/urandom) % 40000 ) ))
		if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"
			return 0
		fi
		i=$((i + 1))
	done
	return 1
}

# bench_wait_port PORT SECONDS: waits until something listens on 127.0.0.1:PORT.
bench_wait_port() {
	i=0
	while [ $i -lt $(( $2 * 10 )) ]; do
		if [ -n "$(ss -Hltn "src 127.0.0.1 and sport = :$1" 2>/dev/null)" ]; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# bench_make_cert DIR: ECDSA P-256 self-signed certificate DIR/cert.pem, key DIR/key.pem,
# for the name bench.test and 127.0.0.1 (the client verifies it with --cafile DIR/cert.pem).
bench_make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1/key.pem" -out "$1/cert.pem" -days 30 -subj "/CN=bench.test" \
		-addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" >/dev/null 2>&1 ||
		bench_die "openssl req failed"
	chmod 644 "$1/cert.pem"
	chmod 640 "$1/key.pem"
}

# bench_tree_pids PID...: the PIDs and all their live descendants.
bench_tree_pids() {
	ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) inset[r[i]] = 1 }
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			changed = 1
			for (round = 0; changed && round < 64; round++) {
				changed = 0
				for (i in pids) {
					p = pids[i]
					if (!(p in inset) && (parent[p] in inset)) { inset[p] = 1; changed = 1 }
				}
			}
			for (p in inset) print p
		}'
}

# bench_tree_cpu PID...: CPU seconds used so far by the trees (utime+stime of live members
# plus cutime+cstime, which hold the time of children already reaped).
bench_tree_cpu() {
	hz=$(getconf CLK_TCK)
	for p in $(bench_tree_pids "$@"); do
		cat "/proc/$p/stat" 2>/dev/null
		echo
	done | awk -v hz="$hz" '
		NF > 0 {
			line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
			t += f[12] + f[13] + f[14] + f[15]
		}
		END { printf "%.3f\n", t / hz }'
}

# bench_tree_mem PID...: "RSS_KiB PSS_KiB NPROCS" summed over the trees.
bench_tree_mem() {
	rss=0; pss=0; n=0
	for p in $(bench_tree_pids "$@"); do
		r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		s=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		[ -n "$r" ] || continue
		rss=$((rss + r)); pss=$((pss + ${s:-0})); n=$((n + 1))
	done
	echo "$rss $pss $n"
}

# bench_settle PID...: waits (at most 20 s) until the trees stop using CPU, so work the
# server does after its replies (queue manager, delivery) is counted.
bench_settle() {
	prev=$(bench_tree_cpu "$@")
	i=0
	while [ $i -lt 40 ]; do
		sleep 0.5
		cur=$(bench_tree_cpu "$@")
		if awk -v a="$prev" -v b="$cur" 'BEGIN { exit !(b - a < 0.02) }'; then
			return 0
		fi
		prev=$cur
		i=$((i + 1))
	done
}

# bench_sys_busy: CPU seconds the whole machine has been busy (all cores, from /proc/stat),
# to tell how much of a run's CPU went to processes other than the server and loadgen.
bench_sys_busy() {
	awk -v hz="$(getconf CLK_TCK)" '/^cpu / {
		printf "%.3f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}

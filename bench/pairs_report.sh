#!/bin/sh
# bench/pairs_report.sh DIR: the figures of bench/pairs.sh's DIR/N-SIDE.kv files, per side:
# every run in order, the median, and the range (max - min) as a percentage of the median;
# last column: after's median relative to before's.
set -eu
dir=${1:-$(dirname "$0")/out/pairs}
keys="load_before load_after s1_messages_per_s s1_server_cpu_ms_per_msg s1_lat_p50_ms
s1_sess_p50_ms s1_errors s1_other_cpu_s s100_messages_per_s s100_server_cpu_ms_per_msg
s100_lat_p50_ms s100_errors s100_other_cpu_s idle_established idle_rss_kib_per_session
idle_pss_kib_per_session idle_rss_before_kib idle_setup_cpu_ms idle_errors"
for k in $keys; do
	for side in before after; do
		vals=
		for f in $(ls "$dir"/*-"$side".kv 2>/dev/null | sort -n -t/ -k1); do
			v=$(sed -n "s/^$k=//p" "$f" | head -n1)
			vals="$vals ${v:-?}"
		done
		echo "$k $side$vals"
	done
done | awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	{
		n = 0; runs = ""
		for (i = 3; i <= NF; i++) { runs = runs " " $i; if ($i != "?" && $i != "") b[++n] = $i + 0 }
		if (n == 0) { printf "| %s | %s |%s | | |", $1, $2, runs; next_line(); next }
		m = median(b, n); lo = b[1]; hi = b[n]
		med[$2] = m
		spread = (m != 0) ? sprintf("%.0f %%", (hi - lo) * 100 / m) : "-"
		line = sprintf("| %s | %s |%s | %.3f | %s |", $1, $2, runs, m, spread)
		if ($2 == "after") {
			rel = (med["before"] != 0) ? sprintf(" %+.1f %% |", (m - med["before"]) * 100 / med["before"]) : " - |"
			line = line rel
		} else line = line " |"
		print line
	}
	function next_line() { print "" }
	BEGIN { print "| figure | side | runs | median | range/median | after vs before (median) |"; print "|---|---|---|---|---|---|" }'

#!/bin/sh
# bench/report.sh: prints the figures of measure.sh result files side by side (markdown).
#   sh bench/report.sh out/smtpgate.kv out/postfix.kv
# A missing or empty file gives a column of "pending".
set -eu
awk '
function g(i, k) { return ((i SUBSEP k) in val) && val[i SUBSEP k] != "" ? val[i SUBSEP k] : "-" }
function pair(i, a, b) { return g(i, a) " / " g(i, b) }
function row(label, target, key,    i, s) {
	s = "| " label " | " target
	for (i = 1; i <= nf; i++) s = s " | " (pending[i] ? "pending" : g(i, key))
	print s " |"
}
BEGIN {
	for (a = 1; a < ARGC; a++) {
		nf++
		file = ARGV[a]
		name[nf] = file
		sub(/^.*\//, "", name[nf]); sub(/\.kv$/, "", name[nf])
		pending[nf] = 1
		while ((getline line < file) > 0) {
			i = index(line, "=")
			if (i > 0) { val[nf SUBSEP substr(line, 1, i - 1)] = substr(line, i + 1); pending[nf] = 0 }
		}
		close(file)
		val[nf SUBSEP "s1_lat"] = pair(nf, "s1_lat_p50_ms", "s1_lat_p99_ms")
		val[nf SUBSEP "s1_sess"] = pair(nf, "s1_sess_p50_ms", "s1_sess_p99_ms")
		val[nf SUBSEP "s100_lat"] = pair(nf, "s100_lat_p50_ms", "s100_lat_p99_ms")
		val[nf SUBSEP "client_cpu"] = pair(nf, "s1_client_cpu_s", "s100_client_cpu_s")
		val[nf SUBSEP "other_cpu"] = pair(nf, "s1_other_cpu_s", "s100_other_cpu_s")
	}
	s = "| figure | target"; sep = "|---|---"
	for (i = 1; i <= nf; i++) { s = s " | " name[i]; sep = sep "|---" }
	print s " |"; print sep "|"
	row("server", "", "version")
	row("1 msg/session: messages/s", ">= 400", "s1_messages_per_s")
	row("1 msg/session: message latency p50 / p99 ms", "", "s1_lat")
	row("1 msg/session: session latency p50 / p99 ms", "", "s1_sess")
	row("1 msg/session: server CPU ms per message", "", "s1_server_cpu_ms_per_msg")
	row("1 msg/session: errors", "0", "s1_errors")
	row("100 msg/session: messages/s", ">= 3000", "s100_messages_per_s")
	row("100 msg/session: message latency p50 / p99 ms", "", "s100_lat")
	row("100 msg/session: server CPU ms per message", "", "s100_server_cpu_ms_per_msg")
	row("100 msg/session: errors", "0", "s100_errors")
	row("idle TLS+AUTH sessions established", "2000", "idle_established")
	row("KiB per idle TLS session (RSS)", "<= 48", "idle_rss_kib_per_session")
	row("KiB per idle TLS session (PSS)", "", "idle_pss_kib_per_session")
	row("server processes with the idle sessions open", "", "idle_procs_after")
	row("server CPU ms per session setup (TLS+AUTH)", "", "idle_setup_cpu_ms")
	row("loadgen CPU s (1 / 100 msg/session runs)", "", "client_cpu")
	row("CPU s outside server and loadgen (s1 / s100)", "~0", "other_cpu")
}' "$@"

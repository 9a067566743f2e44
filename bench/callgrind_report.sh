#!/bin/sh
# bench/callgrind_report.sh KV...: instructions per message (per idle session set-up for
# idle) from bench/callgrind.sh's results, per process and summed: (b - a) / (nb - na).
for kv in "$@"; do
	awk -F= -v label="$(basename "$kv" .kv)" '
		{ v[$1] = $2 }
		END {
			split("s1 s100 idle", w, " ")
			split("parent auth smtp relay", r, " ")
			for (i = 1; i <= 3; i++) {
				t = w[i]
				na = (t == "idle") ? v[t "a_established"] : v[t "a_ok"]
				nb = (t == "idle") ? v[t "b_established"] : v[t "b_ok"]
				if (nb - na <= 0) { printf "%s %s: no difference in counts\n", label, t; continue }
				line = ""; sum = 0
				for (j = 1; j <= 4; j++) {
					a = v[t "a_ir_" r[j]]; b = v[t "b_ir_" r[j]]
					if (a == "" && b == "") continue
					d = (b - a) / (nb - na); sum += d
					line = line sprintf(" %s=%.0f", r[j], d)
				}
				printf "%s %s: n=%d-%d instr_per_unit=%.0f%s\n", label, t, nb, na, sum, line
			}
		}' "$kv"
done

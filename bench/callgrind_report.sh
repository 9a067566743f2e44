#!/bin/sh
# bench/callgrind_report.sh KV...: instructions per message (per idle session set-up for
# idle) from bench/callgrind.sh's results, per process and summed: (b - a) / (nb - na).
# With --total, loadgen may open a few sessions more than the messages need (a slot that
# starts a session after the last message was claimed: TLS + AUTH + QUIT, no message), and
# not the same number in both runs. "corrected" takes them out: the difference minus the
# extra sessions times the idle set-up cost, per message, plus the set-up cost over the
# messages per session of the workload (1 or 100) -- the cost of the workload as defined.
for kv in "$@"; do
	awk -F= -v label="$(basename "$kv" .kv)" '
		{ v[$1] = $2 }
		function per(t, role,   na, nb) {
			na = (t == "idle") ? v[t "a_established"] : v[t "a_ok"]
			nb = (t == "idle") ? v[t "b_established"] : v[t "b_ok"]
			return (v[t "b_ir_" role] - v[t "a_ir_" role]) / (nb - na)
		}
		END {
			split("idle s1 s100", w, " ")
			split("parent auth smtp relay", r, " ")
			for (i = 1; i <= 3; i++) {
				t = w[i]
				na = (t == "idle") ? v[t "a_established"] : v[t "a_ok"]
				nb = (t == "idle") ? v[t "b_established"] : v[t "b_ok"]
				if (nb - na <= 0) { printf "%s %s: no difference in counts\n", label, t; continue }
				ds = v[t "b_sessions"] - v[t "a_sessions"]
				mps = (t == "s100") ? 100 : 1
				line = ""; sum = 0; csum = 0
				for (j = 1; j <= 4; j++) {
					if (v[t "a_ir_" r[j]] == "" && v[t "b_ir_" r[j]] == "") continue
					d = per(t, r[j]); sum += d
					c = d
					if (t != "idle" && ds != "") {
						setup = per("idle", r[j])
						c = d - (ds - (nb - na) / mps) * setup / (nb - na)
					}
					csum += c
					line = line sprintf(" %s=%.0f", r[j], c)
				}
				printf "%s %s: n=%d-%d sessions+%s raw=%.0f corrected=%.0f (%s )\n", label, t, nb, na, ds, sum, csum, line
			}
		}' "$kv"
done

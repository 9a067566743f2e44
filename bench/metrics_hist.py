#!/usr/bin/python3
"""bench/metrics_hist.py BEFORE AFTER FAMILY [LABELS]: the observations of a Prometheus
histogram between two scrapes of /metrics (text format), as count, median and p90, each
interpolated linearly inside its bucket (as PromQL's histogram_quantile). LABELS is the
label text before le, e.g. 'request="plain"'. A figure, not a test: prints nothing when
the family has no new observations."""
import re
import sys


def buckets(path, family, labels):
    want = family + "_bucket{" + (labels + "," if labels else "") + 'le="'
    out = {}
    for line in open(path):
        if line.startswith(want):
            m = re.match(r'.*le="([^"]+)"\}\s+(\S+)', line)
            if m:
                le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                out[le] = float(m.group(2))
    return out


def quantile(q, bs):
    total = bs[float("inf")]
    rank, lo, below = q * total, 0.0, 0.0
    for le in sorted(bs):
        if bs[le] >= rank:
            if le == float("inf"):
                return lo
            inside = bs[le] - below
            return lo + (le - lo) * ((rank - below) / inside if inside else 0)
        lo, below = le, bs[le]
    return lo


def main():
    before, after, family = sys.argv[1:4]
    labels = sys.argv[4] if len(sys.argv) > 4 else ""
    a, b = buckets(before, family, labels), buckets(after, family, labels)
    d = {le: b[le] - a.get(le, 0.0) for le in b}
    if not d or d.get(float("inf"), 0) <= 0:
        return
    print(f"{family}{{{labels}}} n={d[float('inf')]:.0f} "
          f"median={quantile(0.5, d) * 1e6:.1f} us p90={quantile(0.9, d) * 1e6:.1f} us")


main()

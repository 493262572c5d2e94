"""Compares the evaluations of the same sweep run on two or more devices (tools/gpu/check.sh):
for every run present under each results folder, the largest relative difference of every
evaluated metric against the first folder's, over epochs. Prints one line per run and folder.

    python3 tools/gpu/compare_runs.py RESULTS_A RESULTS_B [RESULTS_C …]
"""

import csv
import sys
from pathlib import Path


def evaluations(root):
    """{run: {(epoch, metric): value}} of every eval.csv below root, runs named without their
    id's hash (a bf16 run's id differs from its f32 twin's)."""
    out = {}
    for path in sorted(Path(root).glob("**/eval.csv")):
        with open(path) as f:
            rows = csv.DictReader(f)
            out[path.parent.name.rsplit("-", 1)[0]] = {(r["epoch"], r["metric"]): float(r["value"]) for r in rows}
    return out


def main():
    roots = sys.argv[1:]
    if len(roots) < 2:
        sys.exit(__doc__)
    base = evaluations(roots[0])
    if not base:
        sys.exit(f"no eval.csv below {roots[0]}")
    for root in roots[1:]:
        other = evaluations(root)
        for run, values in base.items():
            theirs = other.get(run)
            if theirs is None:
                print(f"{run}: missing under {root}")
                continue
            worst = {}
            for key, a in values.items():
                if key not in theirs:
                    continue
                b = theirs[key]
                rel = abs(a - b) / max(abs(a), abs(b), 1e-12)
                metric = key[1]
                worst[metric] = max(worst.get(metric, 0.0), rel)
            summary = ", ".join(f"{m} {w:.1e}" for m, w in sorted(worst.items()))
            print(f"{run}: {Path(root).name} vs {Path(roots[0]).name}: largest relative "
                  f"difference {summary}")


if __name__ == "__main__":
    main()

"""kiln's glue-pruning stages beside the official code's, on the same checkpoint.

  python3 scripts/reference/compare.py --kiln <run dir>/run.json --reference cells.jsonl \
      --task mrpc > comparison.md

Reads kiln's per-seed metrics from run.json (`<task>.c<C>.seed<S>.<stage>`, headline setting)
and the JSON lines scripts/reference/kwon2022.py writes, and prints one markdown table: per
constraint and stage, mean ± sd over seeds for each, the difference of the means and its
standard error (Welch), so a difference can be read against the sample-set noise. Sample sets
differ between the two (each draws its own with its own generator), so only the distributions
over seeds are comparable, not seed s against seed s.
"""

import argparse
import json
import math
import re
import statistics
from collections import defaultdict

STAGES = [("search", "search"), ("rearranged", "rearrange"), ("tuned", "tuned")]


def mean_sd(xs):
    m = statistics.fmean(xs)
    return m, (statistics.stdev(xs) if len(xs) > 1 else float("nan"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--task", default="mrpc")
    p.add_argument("--paired", action="store_true",
                   help="both ran on the same sample sets (kiln's `sample_indices` = the official "
                        "code's draws): compare seed by seed")
    a = p.parse_args()
    run = json.load(open(a.kiln))
    metrics = run["metrics"]
    kiln = defaultdict(list)  # (constraint, stage) -> values
    pat = re.compile(rf"^{re.escape(a.task)}\.c([0-9.]+)\.seed(\d+)\.(search|rearranged|tuned)$")
    for k, v in sorted(metrics.items()):
        m = pat.match(k)
        if m:
            kiln[(float(m.group(1)), m.group(3))].append(v)
    ref = defaultdict(list)
    unpruned = set()
    samples = set()
    for line in open(a.reference):
        c = json.loads(line)
        if c["task"] != a.task:
            continue
        unpruned.add(round(100 * c["unpruned"], 2))
        samples.add(c["num_samples"])
        for ks, rs in STAGES:
            if c.get(rs) is not None:
                ref[(c["constraint"], ks)].append(100 * c[rs])
    if a.paired:
        return paired(a, run, metrics)
    kiln_unpruned = {round(v, 2) for k, v in metrics.items()
                     if re.match(rf"^{re.escape(a.task)}\.c[0-9.]+\.unpruned$", k)}
    print(f"Task {a.task}; unpruned dev metric: kiln {sorted(kiln_unpruned)}, "
          f"official code {sorted(unpruned)}; samples per set: kiln "
          f"{run.get('settings', {}).get('profile', {}).get('num_samples', '?')}"
          f", official {sorted(samples)}; kiln backend {run['backend']}, commit {run['commit']}.")
    print()
    print("| constraint | stage | kiln (mean ± sd, n) | official code (mean ± sd, n) | kiln − official | s.e. | |diff|/s.e. |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for c in sorted({c for c, _ in ref} | {c for c, _ in kiln}):
        for ks, _ in STAGES:
            k, r = kiln.get((c, ks), []), ref.get((c, ks), [])
            if not k or not r:
                continue
            (km, ksd), (rm, rsd) = mean_sd(k), mean_sd(r)
            se = math.sqrt((ksd ** 2 / len(k) if len(k) > 1 else 0)
                           + (rsd ** 2 / len(r) if len(r) > 1 else 0))
            z = abs(km - rm) / se if se > 0 else float("nan")
            print(f"| {c:.2f} | {ks} | {km:.2f} ± {ksd:.2f} ({len(k)}) | {rm:.2f} ± {rsd:.2f} "
                  f"({len(r)}) | {km - rm:+.2f} | {se:.2f} | {z:.1f} |")


def paired(a, run, metrics):
    """Seed by seed on identical sample sets: kiln's value, the official code's, and where the
    official code's tuning stopped (if the harness recorded it)."""
    ref = {}
    for line in open(a.reference):
        c = json.loads(line)
        if c["task"] == a.task:
            ref[(c["constraint"], c["seed"])] = c
    print(f"Task {a.task}, identical sample sets (official draws); kiln backend {run['backend']}, "
          f"commit {run['commit']}.")
    print()
    print("| constraint | seed | stage | kiln | official code | kiln − official |")
    print("|---:|---:|---|---:|---:|---:|")
    for (c, seed), r in sorted(ref.items()):
        for ks, rs in STAGES:
            k = metrics.get(f"{a.task}.c{c}.seed{seed}.{ks}")
            if k is None or r.get(rs) is None:
                continue
            o = 100 * r[rs]
            note = ""
            if rs == "tuned" and "tuning_stopped_at" in r:
                note = f" (stopped at {r['tuning_stopped_at']})" if r["tuning_stopped_at"] else " (tuned every block)"
            print(f"| {c:.2f} | {seed} | {ks} | {k:.2f} | {o:.2f}{note} | {k - o:+.2f} |")


if __name__ == "__main__":
    main()

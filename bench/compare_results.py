#!/usr/bin/env python3
"""Compare two kiln results roots cell by cell, ignoring what measures time.

    python3 bench/compare_results.py OLD_ROOT NEW_ROOT [--profile smoke] [experiment ...]

Every CSV table of results/<experiment>/<profile>/ is compared cell by cell, with the columns
that hold timings masked, and every note of table.md with wall times masked. Used to check that
a restructuring leaves an experiment's numbers unchanged (same seed, same machine). Exits 1 on a
difference. Headers written before kiln quoted CSV headers (a column name holding a comma) are
read the same way as new ones.
"""
import csv
import os
import re
import sys

# Column names that hold timings or throughput: they change from run to run.
TIMING = {
    "train s", "prune time (s)", "measured speedup", "train time (s)", "dense examples/s",
    "removal examples/s", "speedup", "gradients", "rearrangement", "tuning", "total",
}
# Tables whose every number after the first columns is a timing.
TIMING_TABLES = {"stages.csv": 3}


def rows(path):
    text = open(path, encoding="utf-8").read().splitlines()
    # An unquoted header with a comma inside a name: re-split it to the rows' width.
    body = list(csv.reader(text[1:]))
    header = next(csv.reader([text[0]]))
    if body and len(header) != len(body[0]):
        header = [h.strip() for h in re.split(r",(?![^(]*\))", text[0])]
    return header, body


def masked(header, body, name):
    cols = {i for i, h in enumerate(header) if h in TIMING}
    if name == "table.csv" and "search" in header and "+ rearrange" in header:
        cols.discard(header.index("search"))  # glue-pruning: the metric after search
    if name in TIMING_TABLES:
        cols |= set(range(TIMING_TABLES[name], len(header)))
    return [[("<t>" if i in cols else c) for i, c in enumerate(r)] for r in body]


def notes(path):
    lines = [l for l in open(path, encoding="utf-8").read().splitlines() if l and not l.startswith("|")]
    return [re.sub(r"wall time \d+ s", "wall time <t> s", l) for l in lines]


def main():
    args = [a for a in sys.argv[1:]]
    profile = "smoke"
    if "--profile" in args:
        i = args.index("--profile")
        profile = args[i + 1]
        del args[i : i + 2]
    old, new, *exps = args
    exps = exps or sorted(d for d in os.listdir(old) if os.path.isdir(os.path.join(old, d, profile)))
    same = True
    for exp in exps:
        a, b = os.path.join(old, exp, profile), os.path.join(new, exp, profile)
        for f in sorted(os.listdir(a)):
            if not f.endswith(".csv"):
                continue
            (ha, ra), (hb, rb) = rows(os.path.join(a, f)), rows(os.path.join(b, f))
            ma, mb = masked(ha, ra, f), masked(hb, rb, f)
            if ma != mb or ha != hb:
                same = False
                print(f"DIFF {exp}/{f}")
                for x, y in zip(ma, mb):
                    if x != y:
                        print(f"  old: {x}\n  new: {y}")
            else:
                print(f"same {exp}/{f} ({len(ra)} rows)")
        na, nb = notes(os.path.join(a, "table.md")), notes(os.path.join(b, "table.md"))
        if na != nb:
            same = False
            print(f"DIFF {exp}/table.md notes")
            for x in set(na) ^ set(nb):
                print(f"  {'old' if x in na else 'new'}: {x[:300]}")
        else:
            print(f"same {exp}/table.md notes")
    print("IDENTICAL (timings masked)" if same else "DIFFERENT")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Computes reference statistics with pandas for the datasets kiln's stats are checked
against, and writes them next to this script as NAME.stats.json.

Run from the repository root:  .venv/bin/python tests/reference/make_stats_reference.py
The outputs are checked in; tests/test_stats_reference.py compares `kiln stats` with them
(and re-runs this computation to make sure the checked-in files are current).
"""
import json
import os
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATASETS = ["breast_cancer.csv", "digits.csv"]


def reference(path):
    df = pd.read_csv(path)
    out = {"num_examples": int(len(df)), "features": {}}
    for name in df.columns:
        col = df[name]
        present = col.dropna()
        f = {"num_non_missing": int(present.size), "num_missing": int(col.isna().sum())}
        if pd.api.types.is_numeric_dtype(col):
            values = present.to_numpy(dtype=np.float64)
            f.update(
                type="INT" if pd.api.types.is_integer_dtype(col) else "FLOAT",
                mean=float(values.mean()),
                std_dev=float(values.std(ddof=0)),  # TFDV reports the population std
                min=float(values.min()),
                max=float(values.max()),
                num_zeros=int((values == 0).sum()),
                median=float(np.median(values)),
                # Distinct values with their counts, ascending: enough to compute the
                # exact rank of any value the sketch returns.
                value_counts=[[float(v), int(c)] for v, c in
                              zip(*np.unique(values, return_counts=True))],
            )
        else:
            counts = present.astype(str).value_counts()
            f.update(
                type="STRING",
                unique=int(present.nunique()),
                # Ties ordered by value so the order is defined.
                value_counts=sorted(([str(k), int(v)] for k, v in counts.items()),
                                    key=lambda kv: (-kv[1], kv[0])),
                avg_length=float(present.astype(str).str.len().mean()),
            )
        out["features"][name] = f
    return out


def main():
    check_only = "--check" in sys.argv
    stale = []
    for name in DATASETS:
        ref = reference(os.path.join(ROOT, "tests", "data", name))
        target = os.path.join(HERE, name.replace(".csv", ".stats.json"))
        text = json.dumps(ref, sort_keys=True, separators=(",", ":")) + "\n"
        if check_only:
            with open(target) as f:
                if json.load(f) != json.loads(text):
                    stale.append(target)
        else:
            tmp = target + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, target)
    if stale:
        print("stale reference files:", *stale)
        sys.exit(1)


if __name__ == "__main__":
    main()

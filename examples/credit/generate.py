#!/usr/bin/env python3
"""Synthetic loan applications for kiln's credit example, one span per monthly batch.

    generate.py OUT_DATA_DIR [--span N] [--rows R] [--seed S]

writes OUT_DATA_DIR/span-N/applications.csv (via a temporary file and a rename). Python 3
standard library only; the same arguments always give the same bytes.

Columns: applicant_id, income (yearly), debt_ratio (monthly debt payments / monthly
income), age, employment_years (empty for about 3% of applicants: not reported),
loan_amount, purpose (car | home_improvement | debt_consolidation | education | medical |
business | vacation), prior_defaults (0-4), default (the label: 1 if the loan defaulted).

The chance of default is a logistic function with thresholds and interactions that trees
find easily and a linear model does not: it rises steeply once debt_ratio passes 0.45,
with every prior default, with a loan large next to the income, for applicants under 25
or less than a year in their job, and for business and vacation loans. About one
application in five defaults; a good model reaches an AUC near 0.8.
"""
import argparse
import csv
import math
import os
import random
import sys
import tempfile

COLUMNS = ["applicant_id", "income", "debt_ratio", "age", "employment_years", "loan_amount",
           "purpose", "prior_defaults", "default"]
# Purpose: (share of applications, effect on the log-odds of default).
PURPOSES = {"car": (0.22, -0.2), "home_improvement": (0.15, -0.3),
            "debt_consolidation": (0.25, 0.3), "education": (0.10, 0.0),
            "medical": (0.08, 0.2), "business": (0.10, 0.8), "vacation": (0.10, 0.6)}


def applicant(rng):
    age = min(75, max(21, int(rng.gauss(40, 12))))
    income = min(400000.0, max(9000.0, 45000 * math.exp(rng.gauss(0, 0.5)) * (
        0.7 + 0.3 * min(age, 50) / 50)))
    debt_ratio = min(0.95, max(0.0, rng.betavariate(2.2, 5.5)))
    employment = min(age - 18, rng.expovariate(1 / 6))
    purpose = rng.choices(list(PURPOSES), [p[0] for p in PURPOSES.values()])[0]
    loan = min(100000.0, max(500.0, 12000 * math.exp(rng.gauss(0, 0.7))))
    prior = 0
    while prior < 4 and rng.random() < 0.18:
        prior += 1

    logit = (-3.4 + (2.4 if debt_ratio > 0.45 else 0.0) + 2.0 * max(0.0, debt_ratio - 0.3) +
             1.2 * prior + 1.3 * max(0.0, math.log(loan / income * 4)) +
             (0.9 if age < 25 else 0.0) + (1.0 if employment < 1 else 0.0) +
             PURPOSES[purpose][1])
    default = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
    employment_text = "" if rng.random() < 0.03 else f"{employment:.1f}"
    return [f"{income:.0f}", f"{debt_ratio:.3f}", age, employment_text, f"{loan:.0f}", purpose,
            prior, default]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_data_dir")
    p.add_argument("--span", type=int, default=1, help="batch number, >= 1 (default 1)")
    p.add_argument("--rows", type=int, default=5000, help="applications (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.span < 1 or a.rows < 1:
        p.error("--span and --rows must be >= 1")
    rng = random.Random(f"kiln-credit:{a.seed}:{a.span}")
    rows = [[f"a{a.span:03d}-{i:06d}"] + applicant(rng) for i in range(a.rows)]

    directory = os.path.join(a.out_data_dir, f"span-{a.span}")
    path = os.path.join(directory, "applications.csv")
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".applications.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            w.writerows(rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    rate = sum(r[-1] for r in rows) / len(rows)
    print(f"{path}: {len(rows)} applications, default rate {rate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

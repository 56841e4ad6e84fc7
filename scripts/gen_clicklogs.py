#!/usr/bin/env python3
"""Generates synthetic e-commerce click logs, the demo's data: one CSV per span.

  gen_clicklogs.py OUT_DIR --span N --rows R [--shifted] [--seed S]

Each row is one impression of an item shown to a user: who (user_id, is_returning,
country, device), what (item_id, category, price, position), when (hour) and what
happened (dwell_time_s, clicked). --shifted draws the span from a drifted world: more
mobile traffic, pricier items, a category the schema has never seen, and more missing
dwell times — the kind of change the validator must catch. Standard library only.
"""
import argparse
import csv
import math
import os
import random

CATEGORIES = ["books", "electronics", "fashion", "home", "garden", "toys", "sports",
              "beauty", "grocery", "music", "games", "office"]
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "ES", "IT"]
DEVICES = ["mobile", "desktop", "tablet"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--span", type=int, required=True)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--shifted", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed if args.seed is not None else args.span)

    device_w = [0.75, 0.2, 0.05] if args.shifted else [0.5, 0.4, 0.1]
    cats = CATEGORIES + (["vr_headsets"] if args.shifted else [])
    cat_w = [1.0 / (i + 1) for i in range(len(cats))]
    price_mu = 3.6 if args.shifted else 3.0
    missing_dwell = 0.25 if args.shifted else 0.05

    span_dir = os.path.join(args.out_dir, f"span-{args.span}")
    os.makedirs(span_dir, exist_ok=True)
    path = os.path.join(span_dir, "clicks.csv")
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "is_returning", "country", "device", "item_id", "category",
                    "price", "position", "hour", "dwell_time_s", "clicked"])
        for _ in range(args.rows):
            user = rng.randrange(50000)
            returning = 1 if rng.random() < 0.6 else 0
            device = rng.choices(DEVICES, device_w)[0]
            category = rng.choices(cats, cat_w)[0]
            price = round(math.exp(rng.gauss(price_mu, 0.8)), 2)
            position = min(20, 1 + int(rng.expovariate(0.25)))
            hour = int(rng.triangular(0, 24, 20)) % 24
            logit = -1.2 - 0.12 * position + 0.5 * returning + (0.3 if device == "desktop" else 0)
            clicked = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
            dwell = "" if rng.random() < missing_dwell else round(
                rng.expovariate(1 / (40 if clicked else 6)), 1)
            country = rng.choices(COUNTRIES, [1.0 / (i + 1) for i in range(len(COUNTRIES))])[0]
            w.writerow([f"u{user:05d}", returning, country, device, rng.randrange(1, 5000),
                        category, price, position, hour, dwell, clicked])
    os.replace(tmp, path)
    print(path)


if __name__ == "__main__":
    main()

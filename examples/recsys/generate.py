#!/usr/bin/env python3
"""Synthetic e-commerce click logs for kiln's recsys example, one span per day.

    generate.py OUT_DATA_DIR --day N [--rows R] [--seed S] [--kind normal|promo|bad]

writes OUT_DATA_DIR/span-N/clicks.csv (written to a temporary file beside it, then
renamed: a reader never sees half a file). Python 3 standard library only. The output is
a function of --day, --rows, --seed and --kind alone: running it twice gives the same bytes.

Columns: user_id, user_type (new | returning), item_id, category, price, hour (0-23),
device (mobile | desktop | tablet), purchase_quantity (0-5; 0 unless the row was clicked
and bought), clicked (the label, 0 or 1).

The calendar (the default --kind of each day):

    day 1    normal  the day the first schema is inferred from
    day 2    promo   a sale: 30-40% off most items, twice as many new users, more
                     fashion, toys and beauty, more mobile traffic. The same columns and
                     values as a normal day, prices within a normal day's range: `kiln
                     validate --drift-threshold 0.1` against day 1 reports drift and
                     nothing else.
    day 3    bad     a broken logging release: the device column is gone and every 20th
                     row has purchase_quantity -1. `kiln validate` reports ERROR anomalies
                     (a missing column, a value below the schema's minimum).
    day 4+   normal  again, each day with its own random stream.

How a click happens (the same on every day; what changes on a promo day is who comes and
what they look at, not how they decide): a logistic model of the item's quality, the
category, the price, the device and the hour, with different weights for new and
returning users. Returning users click on electronics, books and sports, hardly mind the
price, and click more on desktop and in the evening; new users click on fashion, toys and
beauty, are put off by high prices, and click more on mobile and around lunch. A model
that sees user_type crossed with the other features can rank clicks with an AUC around
0.75 in either group; one that ignores user_type does worse on both.

The item catalogue (ids, categories, list prices, quality, popularity) depends on --seed
only, so every day sells the same items. Its cheapest and dearest items are among the
most popular, so every day of the default size sees the catalogue's whole price range:
the range a schema records from one day holds the next day's prices too.
"""
import argparse
import csv
import math
import os
import random
import sys
import tempfile

COLUMNS = ["user_id", "user_type", "item_id", "category", "price", "hour", "device",
           "purchase_quantity", "clicked"]
CATEGORIES = ["electronics", "books", "fashion", "home", "toys", "beauty", "sports", "grocery"]
DEVICES = ["mobile", "desktop", "tablet"]
KINDS = ["normal", "promo", "bad"]

# Median list price and spread (sigma of the log) per category.
PRICE = {"electronics": (120, 0.7), "books": (15, 0.4), "fashion": (40, 0.5),
         "home": (60, 0.6), "toys": (25, 0.5), "beauty": (20, 0.5), "sports": (50, 0.6),
         "grocery": (8, 0.5)}
PRICE_MIN, PRICE_MAX = 1.99, 499.99
NUM_ITEMS = 400
RETURNING_POOL = 20000  # returning users are u000000..u019999; new users get later ids

# Click model: logit = BASE + quality + affinity[type][category] + price_weight[type] * z
# + device[type] + hour[type], z the standardised log price.
BASE = -1.2
AFFINITY = {
    "returning": {"electronics": 1.2, "books": 0.8, "fashion": -0.9, "home": 0.2,
                  "toys": -1.0, "beauty": -0.6, "sports": 0.6, "grocery": -0.3},
    "new": {"electronics": -0.9, "books": -0.3, "fashion": 0.8, "home": -0.3,
            "toys": 0.8, "beauty": 0.6, "sports": -0.2, "grocery": 0.3},
}
PRICE_WEIGHT = {"returning": -0.3, "new": -1.1}
DEVICE_EFFECT = {"returning": {"mobile": -0.3, "desktop": 0.5, "tablet": 0.0},
                 "new": {"mobile": 0.5, "desktop": -0.4, "tablet": 0.0}}


def hour_effect(user_type, hour):
    if user_type == "returning":
        return 0.7 if 18 <= hour <= 23 else (-0.4 if hour < 7 else 0.0)
    return 0.6 if 11 <= hour <= 14 else (-0.2 if hour >= 20 else 0.0)


# Traffic per hour of the day (relative), the same every day: quiet nights, busy evenings.
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 10, 11, 11, 9, 6, 3]

# What differs between a normal and a promo day.
DAY_PROFILE = {
    "normal": {"p_new": 0.3,
               "devices": {"returning": [0.40, 0.45, 0.15], "new": [0.60, 0.30, 0.10]},
               "categories": [0.18, 0.16, 0.14, 0.12, 0.10, 0.10, 0.10, 0.10],
               "discounted": 0.0, "p_buy": 0.3},
    "promo": {"p_new": 0.6,
              "devices": {"returning": [0.60, 0.30, 0.10], "new": [0.85, 0.10, 0.05]},
              "categories": [0.06, 0.06, 0.30, 0.10, 0.22, 0.16, 0.05, 0.05],
              "discounted": 0.8, "p_buy": 0.4},
}


def default_kind(day):
    return {2: "promo", 3: "bad"}.get(day, "normal")


def catalogue(seed):
    """NUM_ITEMS items: (item_id, category, list price, quality, popularity weight)."""
    rng = random.Random(f"kiln-recsys-catalogue:{seed}")
    items = []
    for i in range(NUM_ITEMS):
        category = CATEGORIES[i % len(CATEGORIES)]
        median, sigma = PRICE[category]
        price = min(PRICE_MAX, max(PRICE_MIN, median * math.exp(rng.gauss(0, sigma))))
        items.append([f"item-{i:04d}", category, round(price, 2), rng.gauss(0, 0.5),
                      1.0 / (rng.randrange(NUM_ITEMS) + 8) ** 0.8])
    # Anchors: the cheapest and dearest prices, on items popular enough to sell every day.
    items[7][2], items[7][4] = PRICE_MIN, 1 / 4  # grocery
    items[0][2], items[0][4] = PRICE_MAX, 1 / 4  # electronics
    return [tuple(item) for item in items]


def rows_of_day(day, rows, seed, kind):
    profile = DAY_PROFILE["normal" if kind == "bad" else kind]
    items = catalogue(seed)
    by_category = {c: [it for it in items if it[1] == c] for c in CATEGORIES}
    rng = random.Random(f"kiln-recsys-day:{seed}:{day}")

    # Today's users: a type and a usual device each; a user makes 1 to 8 rows.
    users = []
    new_id = RETURNING_POOL + day * 100000
    returning_ids = rng.sample(range(RETURNING_POOL), rows // 4)
    for uid in returning_ids:
        user_type = "new" if rng.random() < profile["p_new"] else "returning"
        if user_type == "new":
            uid, new_id = new_id, new_id + 1
        device = rng.choices(DEVICES, profile["devices"][user_type])[0]
        users.append((f"u{uid:06d}", user_type, device))

    out = []
    for _ in range(rows):
        user_id, user_type, usual_device = users[rng.randrange(len(users))]
        device = usual_device if rng.random() < 0.9 else rng.choice(DEVICES)
        category = rng.choices(CATEGORIES, profile["categories"])[0]
        pool = by_category[category]
        item_id, _, list_price, quality, _ = rng.choices(pool, [it[4] for it in pool])[0]
        price = list_price
        if list_price > 2 * PRICE_MIN and rng.random() < profile["discounted"]:
            price = round(max(PRICE_MIN, list_price * rng.uniform(0.6, 0.7)), 2)
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        z = (math.log(price) - 3.3) / 1.1
        logit = (BASE + quality + AFFINITY[user_type][category] +
                 PRICE_WEIGHT[user_type] * z + DEVICE_EFFECT[user_type][device] +
                 hour_effect(user_type, hour))
        clicked = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
        quantity = 0
        if clicked and rng.random() < profile["p_buy"]:
            quantity = 1
            while quantity < 5 and rng.random() < 0.45:
                quantity += 1
        out.append([user_id, user_type, item_id, category, f"{price:.2f}", hour, device,
                    quantity, clicked])

    columns = list(COLUMNS)
    if kind == "bad":
        for i in range(0, len(out), 20):
            out[i][columns.index("purchase_quantity")] = -1
        drop = columns.index("device")
        columns.pop(drop)
        for row in out:
            row.pop(drop)
    return columns, out


def write_atomically(path, columns, rows):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".clicks.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            w.writerows(rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_data_dir", help="spans are written to OUT_DATA_DIR/span-N/clicks.csv")
    p.add_argument("--day", type=int, required=True, help="the day (span number), >= 1")
    p.add_argument("--rows", type=int, default=5000, help="rows of the day (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the catalogue and every day")
    p.add_argument("--kind", choices=KINDS, help="override the calendar's kind of the day")
    a = p.parse_args(argv)
    if a.day < 1:
        p.error("--day must be >= 1")
    if a.rows < 4:
        p.error("--rows must be >= 4")
    kind = a.kind or default_kind(a.day)
    columns, rows = rows_of_day(a.day, a.rows, a.seed, kind)
    path = os.path.join(a.out_data_dir, f"span-{a.day}", "clicks.csv")
    write_atomically(path, columns, rows)
    clicks = sum(r[-1] for r in rows)
    print(f"{path}: day {a.day} ({kind}), {len(rows)} rows, click rate {clicks / len(rows):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

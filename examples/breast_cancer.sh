#!/usr/bin/env bash
# The README's worked example: a real dataset (Breast Cancer Wisconsin, 569 rows) through
# import -> stats -> schema -> validate, then a damaged copy caught by the validator.
# Run from the repository root after `make build`; writes into ${OUT:-/tmp/kiln-example}.
set -euo pipefail
K=build/kiln
OUT="${OUT:-/tmp/kiln-example}"
rm -rf "$OUT" && mkdir -p "$OUT"
$K import tests/data/breast_cancer.csv --out "$OUT/bc"
$K stats "$OUT/bc" --out "$OUT/bc-stats"
$K schema infer --stats "$OUT/bc-stats" --split train --out "$OUT/schema.pbtxt"
$K validate "$OUT/bc" --split eval --schema "$OUT/schema.pbtxt" --out "$OUT/check-eval"
# A "new batch": every 5th row gets a 1.6x larger mean_radius and an unknown diagnosis,
# every 7th loses its mean_texture.
awk -F, 'BEGIN{OFS=","} NR==1{print;next} NR%5==0{$1=$1*1.6; $31="unknown"} NR%7==0{$2=""} {print}' \
  tests/data/breast_cancer.csv > "$OUT/new_batch.csv"
rc=0
$K validate "$OUT/new_batch.csv" --schema "$OUT/schema.pbtxt" --previous "$OUT/bc-stats" \
  --previous-split train --drift-threshold 0.1 --out "$OUT/check-new" || rc=$?
echo "kiln validate exit code: $rc (3 = anomalies found)"

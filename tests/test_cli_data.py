"""End-to-end: the same rows as CSV, JSON Lines and TFRecord give the same statistics;
bad rows stop, are skipped or are quarantined; import is deterministic; spans resolve."""
import csv
import io
import json
import os
import random
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "tfrecord"))
from make_fixture import _declare_example_schema  # noqa: E402  (tf.Example, declared independently)
from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402

ROWS = 3000


def make_rows(seed=7):
    rng = random.Random(seed)
    rows = []
    for i in range(ROWS):
        rows.append({
            "id": i,
            "age": rng.randint(18, 90),
            "score": round(rng.gauss(0.5, 0.2), 4) if rng.random() > 0.1 else None,
            "city": rng.choice(["berlin", "paris", "tokyo", "lima", "oslo"]),
        })
    return rows


def write_all_formats(tmp_path, rows):
    with open(tmp_path / "d.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "age", "score", "city"])
        for r in rows:
            w.writerow([r["id"], r["age"], "" if r["score"] is None else r["score"], r["city"]])
    with open(tmp_path / "d.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    m = _declare_example_schema()
    buf = io.BytesIO()
    writer = RecordWriter(buf)
    for r in rows:
        ex = m["Example"]()
        feats = ex.features.feature
        feats["id"].int64_list.value.append(r["id"])
        feats["age"].int64_list.value.append(r["age"])
        if r["score"] is not None:
            # float64 keeps the value exact; TFRecord floats are float32, compared loosely.
            feats["score"].float_list.value.append(r["score"])
        feats["city"].bytes_list.value.append(r["city"].encode())
        writer.write(ex.SerializeToString())
    (tmp_path / "d.tfrecord").write_bytes(buf.getvalue())


def feature_map(path):
    with open(path) as f:
        ds = json.load(f)["datasets"][0]
    return int(ds["numExamples"]), {f["name"]: f for f in ds["features"]}


def test_same_rows_same_statistics_in_every_format(kiln, tmp_path):
    rows = make_rows()
    write_all_formats(tmp_path, rows)
    results = {}
    for ext in ["csv", "jsonl", "tfrecord"]:
        kiln("stats", tmp_path / f"d.{ext}", "--out", tmp_path / f"s-{ext}", "--quiet")
        results[ext] = feature_map(tmp_path / f"s-{ext}" / "statistics.json")
    n, csv_f = results["csv"]
    assert n == ROWS
    scores = [r["score"] for r in rows if r["score"] is not None]
    mean = sum(scores) / len(scores)
    for ext, (n2, f) in results.items():
        assert n2 == ROWS, ext
        assert set(f) == {"id", "age", "score", "city"}, ext
        assert f["age"]["numStats"]["mean"] == pytest.approx(
            sum(r["age"] for r in rows) / ROWS, rel=1e-12), ext
        assert int(f["score"]["numStats"]["commonStats"]["numMissing"]) == ROWS - len(scores)
        rel = 1e-6 if ext == "tfrecord" else 1e-12   # float32 in tf.Example
        assert f["score"]["numStats"]["mean"] == pytest.approx(mean, rel=rel), ext
        assert int(f["city"]["stringStats"]["unique"]) == 5
        assert f["city"]["stringStats"]["topValues"] == csv_f["city"]["stringStats"]["topValues"]


def test_ragged_row_stops_with_file_line_and_column(kiln, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n3,4,5\n6,7\n")
    r = kiln("stats", p, "--out", tmp_path / "s", check=False)
    assert r.returncode == 2
    assert f"{p}:3: column 3: expected 2 fields as in the header, found 3" in r.stderr
    assert r.stderr.count("\n") == 1, "one clear line"


def test_quarantine_writes_rows_aside_and_reports(kiln, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n3,4,5\n6,7\n\"open,8\n")
    r = kiln("stats", p, "--out", tmp_path / "s", "--bad-rows", "quarantine")
    assert "2 bad row(s) quarantined" in r.stderr
    assert (tmp_path / "s" / "quarantine.csv").read_text() == "a,b\n3,4,5\n\"open,8\n"
    errors = (tmp_path / "s" / "quarantine.csv.errors").read_text().splitlines()
    assert errors == [f"{p}:3: column 3: expected 2 fields as in the header, found 3",
                      f"{p}:5: column 1: unterminated quoted field (the quote is never closed)"]
    n, f = feature_map(tmp_path / "s" / "statistics.json")
    assert n == 2


def test_tfrecord_quarantine_reads_back_as_tfrecord(kiln, tmp_path):
    buf = io.BytesIO()
    w = RecordWriter(buf)
    m = _declare_example_schema()
    ex = m["Example"]()
    ex.features.feature["x"].int64_list.value.append(1)
    w.write(ex.SerializeToString())
    w.write(b"\xff\xff not a proto")
    (tmp_path / "in.tfrecord").write_bytes(buf.getvalue())
    kiln("stats", tmp_path / "in.tfrecord", "--out", tmp_path / "s", "--bad-rows", "quarantine")
    q = tmp_path / "s" / "quarantine.tfrecord"
    r = kiln("stats", q, "--out", tmp_path / "s2", "--bad-rows", "skip")
    assert "1 bad row(s) skipped" in r.stderr   # framing intact, payload still garbage


def test_import_is_deterministic_and_partitions_by_feature(kiln, tmp_path):
    rows = make_rows()
    write_all_formats(tmp_path, rows)
    fps = []
    for i in range(2):
        out = tmp_path / f"ds{i}"
        kiln("import", tmp_path / "d.csv", "--out", out, "--partition-feature", "city", "--quiet")
        manifest = json.loads((out / "manifest.json").read_text())
        fps.append(manifest["fingerprint"])
        counts = {s["name"]: s["rows"] for s in manifest["splits"]}
        assert sum(counts.values()) == ROWS
    assert fps[0] == fps[1]
    # Every city lands in exactly one split.
    kiln("stats", tmp_path / "ds0", "--out", tmp_path / "st", "--quiet")
    seen = {}
    for ds in json.loads((tmp_path / "st" / "statistics.json").read_text())["datasets"]:
        for f in ds["features"]:
            if f["name"] == "city":
                for v in f["stringStats"]["topValues"]:
                    assert v["value"] not in seen, v["value"]
                    seen[v["value"]] = ds["name"]
    assert len(seen) == 5


def test_newest_span_is_read_unless_named(kiln, tmp_path):
    for span, n in [(1, 3), (2, 5)]:
        d = tmp_path / "data" / f"span-{span}"
        d.mkdir(parents=True)
        (d / "part.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(n)))
    kiln("stats", str(tmp_path / "data" / "span-{SPAN}" / "*.csv"), "--out", tmp_path / "a", "-q")
    assert feature_map(tmp_path / "a" / "statistics.json")[0] == 5
    kiln("stats", tmp_path / "data", "--span", "1", "--out", tmp_path / "b", "-q")
    assert feature_map(tmp_path / "b" / "statistics.json")[0] == 3
    r = kiln("stats", tmp_path / "data", "--span", "9", "--out", tmp_path / "c", check=False)
    assert r.returncode == 2 and "spans present: 1, 2" in r.stderr


def test_help_documents_exit_codes(kiln):
    for cmd in ["import", "stats", "validate", "schema"]:
        r = kiln(cmd, "--help")
        assert "Exit codes" in r.stdout, cmd
    r = kiln(check=False)
    assert r.returncode == 2


def test_small_int_features_record_every_value_count(kiln, tmp_path):
    from collections import Counter
    rows = make_rows()
    write_all_formats(tmp_path, rows)
    kiln("stats", tmp_path / "d.csv", "--out", tmp_path / "s", "-q")
    _, f = feature_map(tmp_path / "s" / "statistics.json")
    custom = {c["name"]: c for c in f["age"].get("customStats", [])}
    got = {b["label"]: int(b["sampleCount"])
           for b in custom["kiln_value_counts"]["rankHistogram"]["buckets"]}
    assert got == {str(k): v for k, v in Counter(r["age"] for r in rows).items()}
    # 3000 distinct ids exceed the 1000-value cap: no list, rather than a partial one.
    assert "kiln_value_counts" not in {c["name"] for c in f["id"].get("customStats", [])}

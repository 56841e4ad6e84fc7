"""`kiln stats` against pandas on real datasets (references in tests/reference/)."""
import bisect
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

REF = os.path.join(ROOT, "tests", "reference")
DATA = os.path.join(ROOT, "tests", "data")
# KllSketch::RankErrorBound() of the k=200 sketch after 1,797 values (digits; 569 values,
# breast_cancer, give 0.0081): pinned by KllSketchTest.DefaultBoundAtTheSizesTheDocsQuote.
RANK_EPS = 0.0089


def test_reference_files_are_current():
    subprocess.run([sys.executable, os.path.join(REF, "make_stats_reference.py"), "--check"],
                   check=True)


def rank_interval(value_counts, x):
    """Fraction of values < x and <= x."""
    values = [v for v, _ in value_counts]
    cum = [0]
    for _, c in value_counts:
        cum.append(cum[-1] + c)
    n = cum[-1]
    lo = cum[bisect.bisect_left(values, x)] / n
    hi = cum[bisect.bisect_right(values, x)] / n
    return lo, hi


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_stats_match_pandas(kiln, tmp_path, name):
    kiln("stats", os.path.join(DATA, name + ".csv"), "--out", tmp_path, "--quiet")
    with open(tmp_path / "statistics.json") as f:
        got = json.load(f)
    with open(os.path.join(REF, name + ".stats.json")) as f:
        ref = json.load(f)
    assert len(got["datasets"]) == 1
    ds = got["datasets"][0]
    assert int(ds["numExamples"]) == ref["num_examples"]
    features = {f["name"]: f for f in ds["features"]}
    with open(os.path.join(DATA, name + ".csv")) as f:
        header = f.readline().strip().split(",")
    assert list(features) == header, "features in header order"
    for fname, r in ref["features"].items():
        f = features[fname]
        assert f.get("type", "INT") == r["type"], fname
        if r["type"] == "STRING":
            s = f["stringStats"]
            common = s["commonStats"]
            assert int(s["unique"]) == r["unique"]
            top = [[t["value"], int(t["frequency"])] for t in s["topValues"]]
            assert top == r["value_counts"][:20]
            assert s["avgLength"] == pytest.approx(r["avg_length"], rel=1e-6)
        else:
            n = f["numStats"]
            common = n["commonStats"]
            assert n.get("mean", 0) == pytest.approx(r["mean"], rel=1e-9, abs=1e-12), fname
            assert n.get("stdDev", 0) == pytest.approx(r["std_dev"], rel=1e-9, abs=1e-12), fname
            assert n.get("min", 0) == r["min"], fname
            assert n.get("max", 0) == r["max"], fname
            assert int(n.get("numZeros", 0)) == r["num_zeros"], fname
            # Median and quantile boundaries: the exact rank of the returned value must be
            # within the sketch's stated error of the requested one.
            lo, hi = rank_interval(r["value_counts"], n.get("median", 0))
            assert lo - RANK_EPS <= 0.5 <= hi + RANK_EPS, (fname, n["median"], lo, hi)
            qh = [h for h in n["histograms"] if h.get("type") == "QUANTILES"][0]
            edges = [b.get("lowValue", 0) for b in qh["buckets"]] + [qh["buckets"][-1].get("highValue", 0)]
            assert len(edges) == 11
            for i, x in enumerate(edges):
                lo, hi = rank_interval(r["value_counts"], x)
                assert lo - RANK_EPS <= i / 10 <= hi + RANK_EPS, (fname, i, x, lo, hi)
            sh = [h for h in n["histograms"] if h.get("type", "STANDARD") == "STANDARD"][0]
            assert sum(b.get("sampleCount", 0) for b in sh["buckets"]) == pytest.approx(
                r["num_non_missing"])
        assert int(common.get("numNonMissing", 0)) == r["num_non_missing"]
        assert int(common.get("numMissing", 0)) == r["num_missing"]


def test_statistics_pb_parses_with_tensorflow_metadata(kiln, tmp_path):
    from tensorflow_metadata.proto.v0 import statistics_pb2
    kiln("stats", os.path.join(DATA, "breast_cancer.csv"), "--out", tmp_path, "--quiet")
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString((tmp_path / "statistics.pb").read_bytes())
    ds = stats.datasets[0]
    assert ds.num_examples == 569
    diag = [f for f in ds.features if f.name == "diagnosis"][0]
    assert diag.type == statistics_pb2.FeatureNameStatistics.STRING
    assert [(v.value, v.frequency) for v in diag.string_stats.top_values] == [
        ("benign", 357.0), ("malignant", 212.0)]
    radius = [f for f in ds.features if f.name == "mean_radius"][0]
    assert radius.num_stats.common_stats.num_non_missing == 569
    assert len(radius.num_stats.histograms) == 2

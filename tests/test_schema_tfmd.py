"""kiln's schema and anomalies files, read back with the published tensorflow_metadata.

Runs the real binary ($KILN_BIN): `kiln stats` and `kiln schema infer` on a small CSV,
then `kiln validate` on a drifted span, and parses schema.pbtxt, anomalies.pbtxt and
anomalies.json with tensorflow_metadata's own classes. The drift measurements are
recomputed here from the statistics files, independently of kiln's C++.
"""

import math
import os
import pathlib
import random
import subprocess

import pytest
from google.protobuf import json_format, text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

KILN = os.environ["KILN_BIN"]
ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "validation" / "schema.pbtxt"


def kiln(*args, rc=0):
    p = subprocess.run([KILN, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == rc, f"kiln {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfmd")
    rng = random.Random(7)
    train = [(rng.randint(18, 80), f"{rng.uniform(1, 100):.2f}",
              rng.choice(["Bern", "Oslo", "Rome"]), "x" if i % 3 else "")
             for i in range(600)]
    write_csv(d / "train.csv", ["age", "price", "city", "tag"], train)
    # The next span: older users, pricier, a new city, "tag" gone, "extra" new.
    span2 = [(rng.randint(18, 130), f"{rng.uniform(30, 150):.2f}",
              rng.choice(["Bern", "Oslo", "Paris", "Paris"]), 1)
             for _ in range(600)]
    write_csv(d / "span2.csv", ["age", "price", "city", "extra"], span2)
    kiln("stats", d / "train.csv", "--out", d / "stats1", "-q")
    kiln("schema", "infer", "--stats", d / "stats1", "--out", d / "schema.pbtxt",
         "--infer-ranges")
    return d


def read_schema(path):
    return text_format.Parse(pathlib.Path(path).read_text(), schema_pb2.Schema())


def read_stats(path):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(pathlib.Path(path).read_bytes())
    return {f.name: f for f in stats.datasets[0].features}


def test_inferred_schema_parses_with_tfmd(work):
    schema = read_schema(work / "schema.pbtxt")
    by_name = {f.name: f for f in schema.feature}
    assert list(by_name) == ["age", "price", "city", "tag"]
    age = by_name["age"]
    assert age.type == schema_pb2.INT
    assert (age.presence.min_fraction, age.presence.min_count) == (1.0, 1)
    assert (age.value_count.min, age.value_count.max) == (1, 1)
    assert age.HasField("int_domain")
    assert 18 <= age.int_domain.min <= 20 and 78 <= age.int_domain.max <= 80
    assert by_name["price"].type == schema_pb2.FLOAT
    assert by_name["price"].HasField("float_domain")
    city = by_name["city"]
    assert city.type == schema_pb2.BYTES and city.domain == "city"
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert domains["city"] == ["Bern", "Oslo", "Rome"]
    # "tag" is empty in a third of the rows: required in no fraction, present at least once.
    tag = by_name["tag"]
    assert not tag.presence.HasField("min_fraction") and tag.presence.min_count == 1
    assert domains["tag"] == ["x"]


def test_fixture_schema_is_tfmd_text_and_kiln_agrees(work):
    fixture = read_schema(FIXTURE)
    assert len(fixture.feature) == 9
    kiln("schema", "diff", FIXTURE, FIXTURE)
    # What TFMD writes back from the fixture is the same schema for kiln.
    rewritten = work / "fixture_rewritten.pbtxt"
    rewritten.write_text(text_format.MessageToString(fixture))
    kiln("schema", "diff", FIXTURE, rewritten)
    p = kiln("schema", "diff", FIXTURE, work / "schema.pbtxt", rc=3)
    assert "feature 'user_id' removed" in p.stdout
    assert "feature 'tags' removed" in p.stdout
    assert "feature 'tag' added (BYTES)" in p.stdout


def test_clean_span_has_no_anomalies(work):
    kiln("validate", work / "train.csv", "--schema", work / "schema.pbtxt",
         "--out", work / "v1")
    anomalies = text_format.Parse((work / "v1" / "anomalies.pbtxt").read_text(),
                                  anomalies_pb2.Anomalies())
    assert len(anomalies.anomaly_info) == 0
    assert not anomalies.data_missing
    assert read_schema(work / "schema.pbtxt") == anomalies.baseline


def test_drifted_span_anomalies_parse_with_tfmd(work):
    kiln("validate", work / "span2.csv", "--schema", work / "schema.pbtxt",
         "--previous", work / "v1", "--drift-threshold", "0.1", "--out", work / "v2", rc=3)
    text = text_format.Parse((work / "v2" / "anomalies.pbtxt").read_text(),
                             anomalies_pb2.Anomalies())
    from_json = json_format.Parse((work / "v2" / "anomalies.json").read_text(),
                                  anomalies_pb2.Anomalies())
    assert text == from_json

    info = text.anomaly_info
    assert sorted(info) == ["age", "city", "extra", "price", "tag"]
    A = anomalies_pb2.AnomalyInfo

    def types(name):
        return [A.Type.Name(r.type) for r in info[name].reason]

    assert types("tag") == ["SCHEMA_MISSING_COLUMN"]
    assert types("extra") == ["SCHEMA_NEW_COLUMN"]
    assert types("age") == ["INT_TYPE_BIG_INT", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"]
    assert types("city") == ["ENUM_TYPE_UNEXPECTED_STRING_VALUES", "COMPARATOR_L_INFTY_HIGH"]
    assert "FLOAT_TYPE_BIG_FLOAT" in types("price")
    assert info["city"].reason[0].description.startswith(
        "Examples contain values missing from the schema: Paris (~")
    for a in info.values():
        assert a.severity == A.ERROR
    assert info["city"].short_description == "Multiple errors"
    assert list(info["extra"].path.step) == ["extra"]

    # Recompute the drift measurements from the two statistics files.
    cur = read_stats(work / "v2" / "statistics.pb")
    prev = read_stats(work / "v1" / "statistics.pb")
    measured = {tuple(d.path.step): d.drift_measurements[0] for d in text.drift_skew_info}
    M = anomalies_pb2.DriftSkewInfo.Measurement
    assert measured[("city",)].type == M.L_INFTY
    assert measured[("city",)].threshold == pytest.approx(0.1)
    assert measured[("city",)].value == pytest.approx(linf(cur["city"], prev["city"]), abs=1e-12)
    for name in ("age", "price"):
        assert measured[(name,)].type == M.JENSEN_SHANNON_DIVERGENCE
        assert measured[(name,)].value == pytest.approx(jsd(cur[name], prev[name]), abs=1e-9)


def test_statistics_input_gives_the_same_anomalies(work):
    kiln("validate", work / "v2" / "statistics.json", "--schema", work / "schema.pbtxt",
         "--previous", work / "v1" / "statistics.pb", "--drift-threshold", "0.1",
         "--out", work / "v3", rc=3)
    a = text_format.Parse((work / "v2" / "anomalies.pbtxt").read_text(), anomalies_pb2.Anomalies())
    b = text_format.Parse((work / "v3" / "anomalies.pbtxt").read_text(), anomalies_pb2.Anomalies())
    assert a == b


def test_broken_schema_is_a_usage_error_naming_the_position(work):
    bad = work / "bad.pbtxt"
    bad.write_text('feature {\n  name: "age"\n  type: INTEGER\n}\n')
    p = kiln("validate", work / "train.csv", "--schema", bad, "--out", work / "v4", rc=2)
    assert f"{bad}:" in p.stderr and "INTEGER" in p.stderr


# --- independent references (TFDV's definitions, written from scratch) -------------------

def value_counts(f):
    for c in f.custom_stats:
        if c.name == "kiln_value_counts":
            return {b.label: b.sample_count for b in c.rank_histogram.buckets}
    return {b.label: b.sample_count for b in f.string_stats.rank_histogram.buckets}


def linf(a, b):
    ca, cb = value_counts(a), value_counts(b)
    sa, sb = sum(ca.values()), sum(cb.values())
    return max(abs(ca.get(k, 0) / sa - cb.get(k, 0) / sb) for k in set(ca) | set(cb))


def standard_histogram(f):
    for h in f.num_stats.histograms:
        if h.type == statistics_pb2.Histogram.STANDARD:
            return h
    raise AssertionError("no standard histogram")


def jsd(a, b):
    ha, hb = standard_histogram(a), standard_histogram(b)
    intervals = [[(x.low_value, x.high_value, x.sample_count) for x in h.buckets
                  if x.high_value > x.low_value] for h in (ha, hb)]
    bounds = sorted({v for iv in intervals for lo, hi, _ in iv for v in (lo, hi)})

    def rebucket(iv):
        cells = [0.0] * (len(bounds) - 1)
        for lo, hi, n in iv:
            for i in range(len(cells)):
                overlap = min(bounds[i + 1], hi) - max(bounds[i], lo)
                if overlap > 0:
                    cells[i] += n * overlap / (hi - lo)
        total = sum(cells)
        return [c / total for c in cells]

    p, q = rebucket(intervals[0]), rebucket(intervals[1])
    s = 0.0
    for x, y in zip(p, q):
        m = (x + y) / 2
        if x > 0:
            s += x * math.log2(x / m)
        if y > 0:
            s += y * math.log2(y / m)
    return min(s / 2, 1.0)

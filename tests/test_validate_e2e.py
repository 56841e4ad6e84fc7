"""`kiln validate` end to end: CSV -> `kiln stats` -> `kiln schema infer` -> `kiln validate`.

Every test writes small CSV files, runs the real binary, and reads anomalies.pbtxt back with
the published tensorflow_metadata classes. Each anomaly is asserted by its exact
AnomalyInfo.Type name per feature, and each check is also run on clean data, where it must
stay silent (exit 0, no anomalies). Drift and skew use 20k-row samples with fixed seeds: a
resample of the same distribution must pass, a shifted one must not.
"""

import json
import pathlib
import subprocess

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

EXIT_OK, EXIT_USAGE, EXIT_ANOMALIES = 0, 2, 3
Type = anomalies_pb2.AnomalyInfo.Type


# ---------------------------------------------------------------------------------------
# helpers

def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")
    return path


def read_schema(path):
    return text_format.Parse(pathlib.Path(path).read_text(), schema_pb2.Schema())


def write_schema(path, schema):
    pathlib.Path(path).write_text(text_format.MessageToString(schema))
    return path


def feature(schema, name):
    matches = [f for f in schema.feature if f.name == name]
    assert len(matches) == 1, f"feature {name!r} not in schema:\n{schema}"
    return matches[0]


def read_anomalies(out):
    """Anomalies from OUT/anomalies.pbtxt; checks anomalies.json holds the same proto."""
    out = pathlib.Path(out)
    anomalies = text_format.Parse((out / "anomalies.pbtxt").read_text(),
                                  anomalies_pb2.Anomalies())
    from_json = json_format.Parse((out / "anomalies.json").read_text(),
                                  anomalies_pb2.Anomalies())
    assert from_json == anomalies, "anomalies.json and anomalies.pbtxt disagree"
    return anomalies


def reason_types(info):
    return sorted(Type.Name(r.type) for r in info.reason)


def by_feature(anomalies):
    """{feature name: sorted anomaly type names}, plus '(dataset)' for dataset-level ones."""
    result = {name: reason_types(info) for name, info in anomalies.anomaly_info.items()}
    if anomalies.HasField("dataset_anomaly_info") and anomalies.dataset_anomaly_info.reason:
        result["(dataset)"] = reason_types(anomalies.dataset_anomaly_info)
    return result


def validate(kiln, data, schema, out, *flags, rc):
    """Runs `kiln validate`, asserts its exit code, returns (by_feature dict, Anomalies)."""
    p = kiln("validate", data, "--schema", schema, "--out", out, *flags, check=False)
    assert p.returncode == rc, (
        f"kiln validate {data} --schema {schema} {' '.join(map(str, flags))}: exit "
        f"{p.returncode}, expected {rc}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    anomalies = read_anomalies(out)
    found = by_feature(anomalies)
    if rc == EXIT_OK:
        assert found == {}, f"clean data reported anomalies: {found}\n{p.stdout}"
    return found, anomalies


def stats_and_schema(kiln, tmp, csv, *infer_flags):
    """`kiln stats CSV` then `kiln schema infer`; returns (stats dir, schema path)."""
    stats = tmp / (pathlib.Path(csv).stem + "_stats")
    kiln("stats", csv, "--out", stats, "-q")
    schema = tmp / (pathlib.Path(csv).stem + "_schema.pbtxt")
    kiln("schema", "infer", "--stats", stats, "--out", schema, "-q", *infer_flags)
    return stats, schema


# ---------------------------------------------------------------------------------------
# columns and presence

def test_missing_and_new_column(kiln, tmp_path):
    rng = np.random.default_rng(11)
    train = write_csv(tmp_path / "train.csv", ["age", "price", "city"],
                      [(int(rng.integers(18, 80)), f"{rng.uniform(1, 100):.2f}",
                        rng.choice(["Bern", "Oslo", "Rome"])) for _ in range(200)])
    _, schema = stats_and_schema(kiln, tmp_path, train)

    clean = write_csv(tmp_path / "clean.csv", ["age", "price", "city"],
                      [(30, "9.5", "Oslo"), (41, "12.25", "Bern"), (77, "3.0", "Rome")])
    validate(kiln, clean, schema, tmp_path / "ok", rc=EXIT_OK)

    # Columns in another order are still the same columns.
    reordered = write_csv(tmp_path / "reordered.csv", ["city", "age", "price"],
                          [("Oslo", 30, "9.5"), ("Rome", 31, "1.5")])
    validate(kiln, reordered, schema, tmp_path / "ok2", rc=EXIT_OK)

    # 'city' dropped, 'coupon' added.
    changed = write_csv(tmp_path / "changed.csv", ["age", "price", "coupon"],
                        [(30, "9.5", "X1"), (41, "12.25", "X2")])
    found, anomalies = validate(kiln, changed, schema, tmp_path / "bad", rc=EXIT_ANOMALIES)
    assert found == {"city": ["SCHEMA_MISSING_COLUMN"], "coupon": ["SCHEMA_NEW_COLUMN"]}
    assert anomalies.anomaly_info["city"].severity == anomalies_pb2.AnomalyInfo.ERROR
    assert list(anomalies.anomaly_info["coupon"].path.step) == ["coupon"]
    # The baseline is the schema validated against.
    assert [f.name for f in anomalies.baseline.feature] == ["age", "price", "city"]


def test_presence_low_fraction_and_not_present(kiln, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["id", "score"],
                      [(i, i % 7) for i in range(50)])
    _, schema = stats_and_schema(kiln, tmp_path, train)
    score = feature(read_schema(schema), "score")
    assert score.presence.min_fraction == 1.0 and score.presence.min_count == 1

    clean = write_csv(tmp_path / "clean.csv", ["id", "score"], [(1, 3), (2, 4), (3, 0)])
    validate(kiln, clean, schema, tmp_path / "ok", rc=EXIT_OK)

    # Missing in one of three rows: below min_fraction 1.
    some = write_csv(tmp_path / "some.csv", ["id", "score"], [(1, 3), (2, ""), (3, 0)])
    found, _ = validate(kiln, some, schema, tmp_path / "some_out", rc=EXIT_ANOMALIES)
    assert found == {"score": ["FEATURE_TYPE_LOW_FRACTION_PRESENT"]}

    # The header is there but no row has a value: not present at all (TFDV reports only
    # this, not the low fraction as well, and not a missing column).
    none = write_csv(tmp_path / "none.csv", ["id", "score"], [(1, ""), (2, ""), (3, "")])
    found, _ = validate(kiln, none, schema, tmp_path / "none_out", rc=EXIT_ANOMALIES)
    assert found == {"score": ["FEATURE_TYPE_NOT_PRESENT"]}

    # An optional feature (min_count 0, no min_fraction) may be empty or partly missing.
    s = read_schema(schema)
    feature(s, "score").presence.Clear()
    feature(s, "score").presence.min_count = 0
    optional = write_schema(tmp_path / "optional.pbtxt", s)
    validate(kiln, none, optional, tmp_path / "opt_none", rc=EXIT_OK)
    validate(kiln, some, optional, tmp_path / "opt_some", rc=EXIT_OK)


# ---------------------------------------------------------------------------------------
# domains: int and float ranges, NaN, values that do not parse, string enums

def test_int_domain_small_and_big(kiln, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["qty"], [(i % 10,) for i in range(100)])
    _, inferred = stats_and_schema(kiln, tmp_path, train)
    s = read_schema(inferred)
    qty = feature(s, "qty")
    assert qty.type == schema_pb2.INT and not qty.HasField("int_domain")
    qty.int_domain.min = 0
    qty.int_domain.max = 9
    schema = write_schema(tmp_path / "schema.pbtxt", s)

    # The bounds are inclusive.
    validate(kiln, write_csv(tmp_path / "clean.csv", ["qty"], [(0,), (9,), (5,)]), schema,
             tmp_path / "ok", rc=EXIT_OK)

    found, _ = validate(kiln, write_csv(tmp_path / "low.csv", ["qty"], [(-1,), (3,)]),
                        schema, tmp_path / "low", rc=EXIT_ANOMALIES)
    assert found == {"qty": ["INT_TYPE_SMALL_INT"]}

    found, _ = validate(kiln, write_csv(tmp_path / "high.csv", ["qty"], [(10,), (3,)]),
                        schema, tmp_path / "high", rc=EXIT_ANOMALIES)
    assert found == {"qty": ["INT_TYPE_BIG_INT"]}

    found, _ = validate(kiln, write_csv(tmp_path / "both.csv", ["qty"], [(-5,), (12,)]),
                        schema, tmp_path / "both", rc=EXIT_ANOMALIES)
    assert found == {"qty": ["INT_TYPE_BIG_INT", "INT_TYPE_SMALL_INT"]}


def test_int_domain_from_infer_ranges(kiln, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["qty"], [(i,) for i in range(3, 21)])
    _, schema = stats_and_schema(kiln, tmp_path, train, "--infer-ranges")
    qty = feature(read_schema(schema), "qty")
    assert (qty.int_domain.min, qty.int_domain.max) == (3, 20)
    validate(kiln, write_csv(tmp_path / "clean.csv", ["qty"], [(3,), (20,)]), schema,
             tmp_path / "ok", rc=EXIT_OK)
    found, _ = validate(kiln, write_csv(tmp_path / "bad.csv", ["qty"], [(2,), (21,)]),
                        schema, tmp_path / "bad", rc=EXIT_ANOMALIES)
    assert found == {"qty": ["INT_TYPE_BIG_INT", "INT_TYPE_SMALL_INT"]}


def test_float_domain_small_big_and_nan(kiln, tmp_path):
    rng = np.random.default_rng(5)
    train = write_csv(tmp_path / "train.csv", ["p"],
                      [(f"{v:.3f}",) for v in rng.uniform(0, 1, 100)])
    _, inferred = stats_and_schema(kiln, tmp_path, train)
    s = read_schema(inferred)
    p = feature(s, "p")
    assert p.type == schema_pb2.FLOAT
    p.float_domain.min = 0.0
    p.float_domain.max = 1.0
    allow_nan = write_schema(tmp_path / "allow_nan.pbtxt", s)
    p.float_domain.disallow_nan = True
    schema = write_schema(tmp_path / "schema.pbtxt", s)

    clean = write_csv(tmp_path / "clean.csv", ["p"], [("0.0",), ("0.5",), ("1.0",)])
    validate(kiln, clean, schema, tmp_path / "ok", rc=EXIT_OK)

    found, _ = validate(kiln, write_csv(tmp_path / "low.csv", ["p"], [("-0.25",), ("0.5",)]),
                        schema, tmp_path / "low", rc=EXIT_ANOMALIES)
    assert found == {"p": ["FLOAT_TYPE_SMALL_FLOAT"]}

    found, _ = validate(kiln, write_csv(tmp_path / "high.csv", ["p"], [("1.5",), ("0.5",)]),
                        schema, tmp_path / "high", rc=EXIT_ANOMALIES)
    assert found == {"p": ["FLOAT_TYPE_BIG_FLOAT"]}

    with_nan = write_csv(tmp_path / "nan.csv", ["p"], [("0.25",), ("nan",), ("0.75",)])
    found, _ = validate(kiln, with_nan, schema, tmp_path / "nan", rc=EXIT_ANOMALIES)
    assert found == {"p": ["FLOAT_TYPE_HAS_NAN"]}
    # Without disallow_nan the same NaN is fine (and is not taken as out of range).
    validate(kiln, with_nan, allow_nan, tmp_path / "nan_ok", rc=EXIT_OK)


def test_strings_that_do_not_parse_as_numbers(kiln, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["f", "i"],
                      [(f"{k}.5", k) for k in range(30)])
    _, schema = stats_and_schema(kiln, tmp_path, train)
    s = read_schema(schema)
    assert (feature(s, "f").type, feature(s, "i").type) == (schema_pb2.FLOAT, schema_pb2.INT)

    clean = write_csv(tmp_path / "clean.csv", ["f", "i"], [("1.5", 1), ("-2", 7)])
    validate(kiln, clean, schema, tmp_path / "ok", rc=EXIT_OK)

    bad = write_csv(tmp_path / "bad.csv", ["f", "i"],
                    [("1.5", 1), ("abc", "xyz"), ("3.5", 3)])
    found, anomalies = validate(kiln, bad, schema, tmp_path / "bad_out", rc=EXIT_ANOMALIES)
    assert found == {"f": ["FLOAT_TYPE_STRING_NOT_FLOAT"], "i": ["INT_TYPE_NOT_INT_STRING"]}
    assert "abc" in anomalies.anomaly_info["f"].reason[0].description
    assert "xyz" in anomalies.anomaly_info["i"].reason[0].description


def test_enum_unexpected_string_values(kiln, tmp_path):
    rng = np.random.default_rng(3)
    train = write_csv(tmp_path / "train.csv", ["color", "n"],
                      [(rng.choice(["red", "green", "blue"]), i) for i in range(300)])
    _, schema = stats_and_schema(kiln, tmp_path, train)
    s = read_schema(schema)
    color = feature(s, "color")
    assert color.type == schema_pb2.BYTES and color.domain == "color"
    domain = [d for d in s.string_domain if d.name == "color"]
    assert len(domain) == 1 and sorted(domain[0].value) == ["blue", "green", "red"]

    # A subset of the domain is fine.
    clean = write_csv(tmp_path / "clean.csv", ["color", "n"], [("red", 1), ("red", 2)])
    validate(kiln, clean, schema, tmp_path / "ok", rc=EXIT_OK)

    bad = write_csv(tmp_path / "bad.csv", ["color", "n"],
                    [("red", 1), ("magenta", 2), ("blue", 3), ("magenta", 4)])
    found, anomalies = validate(kiln, bad, schema, tmp_path / "bad_out", rc=EXIT_ANOMALIES)
    assert found == {"color": ["ENUM_TYPE_UNEXPECTED_STRING_VALUES"]}
    description = anomalies.anomaly_info["color"].reason[0].description
    assert "magenta" in description
    for known in ("red", "green", "blue"):
        assert known not in description, description


def test_dataset_num_examples(kiln, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["v"], [(i,) for i in range(20)])
    _, inferred = stats_and_schema(kiln, tmp_path, train)
    s = read_schema(inferred)
    s.dataset_constraints.min_examples_count = 5
    s.dataset_constraints.max_examples_count = 10
    schema = write_schema(tmp_path / "schema.pbtxt", s)

    for n in (5, 10):  # both bounds inclusive
        data = write_csv(tmp_path / f"n{n}.csv", ["v"], [(i,) for i in range(n)])
        validate(kiln, data, schema, tmp_path / f"ok{n}", rc=EXIT_OK)

    few = write_csv(tmp_path / "few.csv", ["v"], [(i,) for i in range(4)])
    found, _ = validate(kiln, few, schema, tmp_path / "few_out", rc=EXIT_ANOMALIES)
    assert found == {"(dataset)": ["DATASET_LOW_NUM_EXAMPLES"]}

    many = write_csv(tmp_path / "many.csv", ["v"], [(i,) for i in range(11)])
    found, _ = validate(kiln, many, schema, tmp_path / "many_out", rc=EXIT_ANOMALIES)
    assert found == {"(dataset)": ["DATASET_HIGH_NUM_EXAMPLES"]}

    # The same check on statistics written by `kiln stats` instead of raw data.
    kiln("stats", many, "--out", tmp_path / "many_stats", "-q")
    found, _ = validate(kiln, tmp_path / "many_stats", schema, tmp_path / "many_out2",
                        rc=EXIT_ANOMALIES)
    assert found == {"(dataset)": ["DATASET_HIGH_NUM_EXAMPLES"]}


# ---------------------------------------------------------------------------------------
# drift and skew

N = 20_000
BASE_MIX = [0.5, 0.3, 0.2]


def write_sample(path, seed, mean, mix, k_mix):
    """x: normal(mean, 1) float; c: a string category; k: a small int code 1..3."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, 1.0, N)
    c = rng.choice(["a", "b", "c"], N, p=mix)
    k = rng.choice([1, 2, 3], N, p=k_mix)
    with open(path, "w") as f:
        f.write("x,c,k\n")
        f.writelines(f"{x[i]:.4f},{c[i]},{k[i]}\n" for i in range(N))
    return path


@pytest.fixture(scope="module")
def drift(tmp_path_factory, kiln_bin):
    """Previous span, a resample of it (other seed), and a shifted span; stats and schema."""
    d = tmp_path_factory.mktemp("drift")
    previous = write_sample(d / "previous.csv", 1, 0.0, BASE_MIX, BASE_MIX)
    same = write_sample(d / "same.csv", 2, 0.0, BASE_MIX, BASE_MIX)
    # x moves by one standard deviation; c's mix changes by 0.3 at most; k's by 0.2 (value 1),
    # a large L-infinity distance but a small Jensen-Shannon divergence (about 0.03).
    shifted = write_sample(d / "shifted.csv", 3, 1.0, [0.2, 0.3, 0.5], [0.3, 0.4, 0.3])

    def run(*args):
        p = subprocess.run([kiln_bin, *map(str, args)], capture_output=True, text=True)
        assert p.returncode == 0, f"kiln {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"

    for name in ("previous", "same", "shifted"):
        run("stats", d / f"{name}.csv", "--out", d / f"{name}_stats", "-q")
    run("schema", "infer", "--stats", d / "previous_stats", "--out", d / "schema.pbtxt", "-q")
    s = read_schema(d / "schema.pbtxt")
    assert [(f.name, f.type) for f in s.feature] == [
        ("x", schema_pb2.FLOAT), ("c", schema_pb2.BYTES), ("k", schema_pb2.INT)]
    for f in s.feature:
        assert not f.HasField("drift_comparator") and not f.HasField("skew_comparator")
    return {"dir": d, "previous": previous, "same": same, "shifted": shifted,
            "schema": d / "schema.pbtxt"}


def schema_with_comparators(drift, path, kind, categorical_k=True):
    """The inferred schema plus `kind` ('drift' or 'skew') comparators at 0.1 on x, c, k."""
    s = read_schema(drift["schema"])
    for f in s.feature:
        comparator = getattr(f, f"{kind}_comparator")
        if f.name == "x":
            comparator.jensen_shannon_divergence.threshold = 0.1
        elif f.name == "c":
            comparator.infinity_norm.threshold = 0.1
        elif f.name == "k" and categorical_k:
            f.int_domain.is_categorical = True
            comparator.infinity_norm.threshold = 0.1
    return write_schema(path, s)


def shares(path, column):
    """{value: fraction of rows} of one CSV column, counted here independently of kiln."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        i = header.index(column)
        values = [line.rstrip("\n").split(",")[i] for line in f]
    names, counts = np.unique(values, return_counts=True)
    return dict(zip(names.tolist(), (counts / len(values)).tolist()))


def l_infinity(a, b):
    return max(abs(a.get(v, 0.0) - b.get(v, 0.0)) for v in set(a) | set(b))


def drift_records(out):
    return {(r["feature"], r["kind"]): r for r in json.loads(
        (pathlib.Path(out) / "drift_skew.json").read_text())}


def test_drift_threshold_same_distribution_passes(kiln, drift, tmp_path):
    out = tmp_path / "out"
    validate(kiln, drift["same"], drift["schema"], out, "--previous",
             drift["dir"] / "previous_stats", "--drift-threshold", "0.1", rc=EXIT_OK)
    records = drift_records(out)
    # Every feature was compared, and every distance is well under the threshold.
    assert set(records) == {("x", "drift"), ("c", "drift"), ("k", "drift")}
    assert records[("x", "drift")]["measurements"][0]["type"] == "JENSEN_SHANNON_DIVERGENCE"
    assert records[("c", "drift")]["measurements"][0]["type"] == "L_INFTY"
    for r in records.values():
        assert not r["anomalous"]
        assert 0 <= r["measurements"][0]["value"] < 0.05, r


def test_drift_threshold_shifted_distribution(kiln, drift, tmp_path):
    found, anomalies = validate(
        kiln, drift["shifted"], drift["schema"], tmp_path / "out", "--previous",
        drift["dir"] / "previous_stats", "--drift-threshold", "0.1", rc=EXIT_ANOMALIES)
    # k is numeric here (not categorical), so it is measured by Jensen-Shannon divergence,
    # which its small mix change keeps under 0.1.
    assert found == {"x": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
                     "c": ["COMPARATOR_L_INFTY_HIGH"]}
    assert "previous" in anomalies.anomaly_info["c"].reason[0].description
    records = drift_records(tmp_path / "out")
    assert records[("x", "drift")]["anomalous"] and records[("c", "drift")]["anomalous"]
    assert not records[("k", "drift")]["anomalous"]
    # The L-infinity distance of c is the largest change in a category's share (about 0.3).
    expected = l_infinity(shares(drift["previous"], "c"), shares(drift["shifted"], "c"))
    assert expected == pytest.approx(0.3, abs=0.02)
    assert records[("c", "drift")]["measurements"][0]["value"] == pytest.approx(expected,
                                                                               abs=1e-9)


def test_drift_current_as_statistics(kiln, drift, tmp_path):
    """DATA may be the statistics of the current span instead of its rows."""
    found, _ = validate(kiln, drift["dir"] / "shifted_stats", drift["schema"],
                        tmp_path / "bad", "--previous", drift["dir"] / "previous_stats",
                        "--drift-threshold", "0.1", rc=EXIT_ANOMALIES)
    assert found == {"x": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
                     "c": ["COMPARATOR_L_INFTY_HIGH"]}
    validate(kiln, drift["dir"] / "same_stats", drift["schema"], tmp_path / "ok",
             "--previous", drift["dir"] / "previous_stats", "--drift-threshold", "0.1",
             rc=EXIT_OK)


def test_no_comparator_no_drift_check(kiln, drift, tmp_path):
    """Without comparators in the schema and without --drift-threshold nothing is compared."""
    validate(kiln, drift["shifted"], drift["schema"], tmp_path / "out", "--previous",
             drift["dir"] / "previous_stats", rc=EXIT_OK)


def test_drift_thresholds_from_schema(kiln, drift, tmp_path):
    schema = schema_with_comparators(drift, tmp_path / "schema.pbtxt", "drift",
                                     categorical_k=False)
    found, _ = validate(kiln, drift["shifted"], schema, tmp_path / "bad", "--previous",
                        drift["dir"] / "previous_stats", rc=EXIT_ANOMALIES)
    assert found == {"x": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
                     "c": ["COMPARATOR_L_INFTY_HIGH"]}
    # Only features with a comparator are measured.
    assert set(drift_records(tmp_path / "bad")) == {("x", "drift"), ("c", "drift")}
    validate(kiln, drift["same"], schema, tmp_path / "ok", "--previous",
             drift["dir"] / "previous_stats", rc=EXIT_OK)
    # A drift comparator says nothing about skew.
    validate(kiln, drift["previous"], schema, tmp_path / "skew", "--serving",
             drift["dir"] / "shifted_stats", rc=EXIT_OK)


def test_categorical_int_drift(kiln, drift, tmp_path):
    schema = schema_with_comparators(drift, tmp_path / "schema.pbtxt", "drift")
    found, anomalies = validate(kiln, drift["shifted"], schema, tmp_path / "bad",
                                "--previous", drift["dir"] / "previous_stats",
                                rc=EXIT_ANOMALIES)
    assert found == {"x": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
                     "c": ["COMPARATOR_L_INFTY_HIGH"], "k": ["COMPARATOR_L_INFTY_HIGH"]}
    k = drift_records(tmp_path / "bad")[("k", "drift")]["measurements"][0]
    expected = l_infinity(shares(drift["previous"], "k"), shares(drift["shifted"], "k"))
    assert expected == pytest.approx(0.2, abs=0.02)
    assert k["type"] == "L_INFTY" and k["value"] == pytest.approx(expected, abs=1e-9)
    # The value whose share moved most (k = 1: 0.5 -> 0.3) is named.
    assert "is: 1." in anomalies.anomaly_info["k"].reason[0].description
    validate(kiln, drift["same"], schema, tmp_path / "ok", "--previous",
             drift["dir"] / "previous_stats", rc=EXIT_OK)


def test_skew_with_drift_threshold(kiln, drift, tmp_path):
    found, anomalies = validate(
        kiln, drift["previous"], drift["schema"], tmp_path / "bad", "--serving",
        drift["dir"] / "shifted_stats", "--drift-threshold", "0.1", rc=EXIT_ANOMALIES)
    assert found == {"x": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
                     "c": ["COMPARATOR_L_INFTY_HIGH"]}
    assert "training and serving" in anomalies.anomaly_info["x"].reason[0].description
    assert {kind for _, kind in drift_records(tmp_path / "bad")} == {"skew"}
    validate(kiln, drift["previous"], drift["schema"], tmp_path / "ok", "--serving",
             drift["dir"] / "same_stats", "--drift-threshold", "0.1", rc=EXIT_OK)


def test_skew_thresholds_from_schema(kiln, drift, tmp_path):
    schema = schema_with_comparators(drift, tmp_path / "schema.pbtxt", "skew")
    # Training statistics as DATA, serving statistics from `kiln stats`.
    found, _ = validate(kiln, drift["dir"] / "previous_stats", schema, tmp_path / "bad",
                        "--serving", drift["dir"] / "shifted_stats", rc=EXIT_ANOMALIES)
    assert found == {"x": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
                     "c": ["COMPARATOR_L_INFTY_HIGH"], "k": ["COMPARATOR_L_INFTY_HIGH"]}
    validate(kiln, drift["dir"] / "previous_stats", schema, tmp_path / "ok", "--serving",
             drift["dir"] / "same_stats", rc=EXIT_OK)
    # A skew comparator says nothing about drift.
    validate(kiln, drift["shifted"], schema, tmp_path / "drift", "--previous",
             drift["dir"] / "previous_stats", rc=EXIT_OK)


# ---------------------------------------------------------------------------------------
# usage errors and schema diff

def test_validate_usage_errors(kiln, drift, tmp_path):
    p = kiln("validate", drift["same"], "--out", tmp_path / "o1", check=False)
    assert p.returncode == EXIT_USAGE, p.stderr
    p = kiln("validate", tmp_path / "absent.csv", "--schema", drift["schema"],
             "--out", tmp_path / "o2", check=False)
    assert p.returncode == EXIT_USAGE and "absent.csv" in p.stderr, p.stderr
    bad_schema = tmp_path / "bad.pbtxt"
    bad_schema.write_text("feature { name: \n")
    p = kiln("validate", drift["same"], "--schema", bad_schema, "--out", tmp_path / "o3",
             check=False)
    assert p.returncode == EXIT_USAGE and "bad.pbtxt" in p.stderr, p.stderr


def test_schema_diff(kiln, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["age", "city"],
                      [(20 + i % 50, ["Bern", "Oslo"][i % 2]) for i in range(100)])
    _, a = stats_and_schema(kiln, tmp_path, train)

    p = kiln("schema", "diff", a, a, check=False)
    assert p.returncode == 0, p.stdout + p.stderr

    # Feature order does not matter.
    s = read_schema(a)
    reordered = schema_pb2.Schema()
    reordered.CopyFrom(s)
    del reordered.feature[:]
    reordered.feature.extend(reversed(s.feature))
    p = kiln("schema", "diff", a, write_schema(tmp_path / "reordered.pbtxt", reordered),
             check=False)
    assert p.returncode == 0, p.stdout + p.stderr

    # A tightened int domain and a new feature.
    changed = schema_pb2.Schema()
    changed.CopyFrom(s)
    feature(changed, "age").int_domain.max = 60
    changed.feature.add(name="coupon", type=schema_pb2.BYTES)
    b = write_schema(tmp_path / "b.pbtxt", changed)
    p = kiln("schema", "diff", a, b, check=False)
    assert p.returncode == EXIT_ANOMALIES, p.stdout + p.stderr
    assert "age" in p.stdout and "int_domain" in p.stdout, p.stdout
    assert "coupon" in p.stdout, p.stdout

    p = kiln("schema", "diff", a, tmp_path / "absent.pbtxt", check=False)
    assert p.returncode not in (0, EXIT_ANOMALIES), p.stdout + p.stderr

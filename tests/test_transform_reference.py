"""kiln's feature transform against numpy/pandas references.

A small fixture binary (src/kiln/transform/tools/transform_fixture.cc) fits a spec on a CSV
and applies it to the same rows; every fitted statistic and every output value is recomputed
here independently: z-score and min-max with numpy, medians and quantile boundaries from the
sorted values (exact below the KLL sketch's capacity), vocabularies from pandas value counts,
and hash buckets, salted PII hashes and crosses from the documented formulas (Hash64 ported
to Python, HMAC-SHA256 from the standard library). Ids computed outside kiln agreeing with
kiln's shows the documented contract is enough to reproduce them.
"""
import hashlib
import hmac
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

FIXTURE = os.environ.get(
    "KILN_TRANSFORM_FIXTURE",
    os.path.join(os.environ.get("KILN_BINARY_DIR", os.path.join(ROOT, "build", "release")),
                 "src", "kiln", "transform", "kiln_transform_fixture"))

M64 = (1 << 64) - 1


def mix64(x):
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    x ^= x >> 33
    return x


def hash64(data: bytes, seed: int = 0) -> int:
    """kiln::Hash64 (src/kiln/base/hash.cc)."""
    mul = 0x9DDFEA08EB382D69
    n = len(data)
    h = (seed ^ ((n * mul) & M64) ^ 0x2545F4914F6CDD1D) & M64
    i = 0
    while n - i >= 8:
        h = ((h ^ mix64(int.from_bytes(data[i:i + 8], "little"))) * mul) & M64
        h ^= h >> 29
        i += 8
    rest = n - i
    tail = int.from_bytes(data[i:], "little")
    h = ((h ^ mix64(tail ^ ((rest << 56) & M64))) * mul) & M64
    return mix64(h)


SPEC = """
transform:
  features:
    a: [{fill: median}, zscore]
    m: [{fill: mean}, minmax]
    b: [{bucketize: {quantiles: 5}}]
    c: [{vocabulary: {top_k: 10, min_frequency: 3, oov_buckets: 2}}]
    d: [{hash_buckets: 100}]
    e: [{pii: {salted_hash: {salt_env: KILN_PII_SALT, buckets: 50}}}]
    l: [log1p, zscore]
  crosses:
    - {features: [c, b], hash_buckets: 64}
  exclude: [label]
"""
SALT = "reference-salt"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    assert os.path.exists(FIXTURE), f"transform fixture not built at {FIXTURE}"
    tmp = tmp_path_factory.mktemp("transform")
    rng = np.random.default_rng(42)
    n = 1500  # below the KLL sketch's exact capacity (2 * 1024 values)

    def holes(values, every):
        values = pd.Series(values, dtype=object)
        values[rng.integers(0, every, n) == 0] = None
        return values

    cats = [f"c{int(z):02d}" for z in np.minimum(rng.zipf(1.6, n), 40)]
    df = pd.DataFrame({
        "a": holes(np.round(rng.normal(50, 12, n), 3), 10),
        "m": holes(np.round(rng.gamma(2.0, 3.0, n), 4), 8),
        "b": holes(rng.integers(0, 1000, n), 12),
        "c": holes(cats, 15),
        "d": holes([f"https://site{int(k)}.example/p" for k in rng.integers(0, 500, n)], 9),
        "e": holes([f"user{int(k)}@mail.example" for k in rng.integers(0, 400, n)], 7),
        "l": np.round(rng.exponential(100.0, n), 2),
        "label": rng.integers(0, 2, n),
    })
    csv = tmp / "data.csv"
    df.to_csv(csv, index=False)
    spec = tmp / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp / "out.json"
    env = dict(os.environ, KILN_PII_SALT=SALT)
    subprocess.run([FIXTURE, spec, csv, out], check=True, env=env, timeout=120)
    with open(out) as f:
        got = json.load(f)
    # Read back the way kiln reads it: empty fields are missing.
    ref = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    return ref, got


def fitted_ops(got, name):
    for f in got["transform"]["features"]:
        if f["name"] == name:
            return f["ops"]
    raise KeyError(name)


def dense_col(got, name):
    names = [o["name"] for o in got["transform"]["outputs"] if o["kind"] == "dense"]
    j = names.index(name)
    return np.array([row[j] for row in got["dense"]], dtype=np.float32)


def ids_col(got, name):
    names = [o["name"] for o in got["transform"]["outputs"] if o["kind"] == "categorical"]
    j = names.index(name)
    return np.array([row[j] for row in got["ids"]], dtype=np.int64)


def close(a, b, rel=1e-12):
    assert abs(a - b) <= rel * max(1.0, abs(b)), (a, b)


def test_fill_median_then_zscore(result):
    df, got = result
    ops = fitted_ops(got, "a")
    present = np.sort(df["a"].dropna().to_numpy())
    median = present[len(present) // 2]  # the value at position floor(n / 2)
    assert ops[0]["value"] == median
    filled = df["a"].fillna(median).to_numpy()
    close(ops[1]["mean"], filled.mean())
    close(ops[1]["std"], filled.std(ddof=0))
    want = ((filled - ops[1]["mean"]) / ops[1]["std"]).astype(np.float32)
    np.testing.assert_array_equal(dense_col(got, "a"), want)


def test_fill_mean_then_minmax(result):
    df, got = result
    ops = fitted_ops(got, "m")
    close(ops[0]["value"], df["m"].mean())
    filled = df["m"].fillna(ops[0]["value"]).to_numpy()
    assert ops[1]["min"] == filled.min() and ops[1]["max"] == filled.max()
    want = ((filled - ops[1]["min"]) / (ops[1]["max"] - ops[1]["min"])).astype(np.float32)
    np.testing.assert_array_equal(dense_col(got, "m"), want)


def test_log1p_then_zscore(result):
    df, got = result
    ops = fitted_ops(got, "l")
    logged = np.log1p(df["l"].to_numpy())
    close(ops[1]["mean"], logged.mean(), 1e-9)
    close(ops[1]["std"], logged.std(ddof=0), 1e-9)
    want = (logged - ops[1]["mean"]) / ops[1]["std"]
    np.testing.assert_allclose(dense_col(got, "l"), want, rtol=1e-6, atol=1e-6)


def test_quantile_buckets(result):
    df, got = result
    op = fitted_ops(got, "b")[0]
    present = np.sort(df["b"].dropna().to_numpy())
    n = len(present)
    want = []
    for i in range(1, 5):
        q = present[i * n // 5]
        if q > present[0] and (not want or q > want[-1]):
            want.append(float(q))
    assert op["exact"] is True
    assert op["fitted_boundaries"] == want
    x = df["b"].to_numpy()
    ids = np.where(np.isnan(x), len(want) + 1, np.searchsorted(want, x, side="right"))
    np.testing.assert_array_equal(ids_col(got, "b"), ids)


def vocabulary(series, top_k, min_frequency):
    counts = series.dropna().value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    return [v for v, c in ranked[:top_k] if c >= min_frequency]


def test_vocabulary_with_oov_and_missing(result):
    df, got = result
    op = fitted_ops(got, "c")[0]
    tokens = vocabulary(df["c"], 10, 3)
    assert op["tokens"] == tokens
    index = {t: i for i, t in enumerate(tokens)}
    v, oov = len(tokens), 2

    def vid(s):
        if not isinstance(s, str):
            return v + oov
        return index.get(s, v + hash64(s.encode()) % oov)

    np.testing.assert_array_equal(ids_col(got, "c"), [vid(s) for s in df["c"]])


def test_hash_buckets(result):
    df, got = result
    want = [hash64(s.encode()) % 100 if isinstance(s, str) else 100 for s in df["d"]]
    np.testing.assert_array_equal(ids_col(got, "d"), want)


def test_salted_pii_hash(result):
    df, got = result

    def hid(s):
        if not isinstance(s, str):
            return 50
        digest = hmac.new(SALT.encode(), s.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "little") % 50

    np.testing.assert_array_equal(ids_col(got, "e"), [hid(s) for s in df["e"]])
    check = hmac.new(SALT.encode(), b"kiln.transform.salt", hashlib.sha256).digest()[:8].hex()
    assert fitted_ops(got, "e")[0]["salt_check"] == check
    assert SALT not in json.dumps(got["transform"])


def test_cross_of_ids(result):
    _, got = result
    c, b = ids_col(got, "c"), ids_col(got, "b")
    want = [hash64(int(x).to_bytes(8, "little") + int(y).to_bytes(8, "little")) % 64
            for x, y in zip(c, b)]
    np.testing.assert_array_equal(ids_col(got, "c_x_b"), want)


def test_label_is_excluded_and_signature_ordered(result):
    _, got = result
    outputs = [(o["name"], o["kind"]) for o in got["transform"]["outputs"]]
    assert outputs == [("a", "dense"), ("m", "dense"), ("l", "dense"), ("b", "categorical"),
                       ("c", "categorical"), ("d", "categorical"), ("e", "categorical"),
                       ("c_x_b", "categorical")]

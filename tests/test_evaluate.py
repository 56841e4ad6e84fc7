"""End-to-end: `kiln evaluate` (TFX Evaluator / TFMA) on real datasets. Every metric of
every slice in evaluation.json is recomputed with scikit-learn / pandas from the scores
`kiln predict` writes for the same rows, to 1e-6; then the blessing: thresholds met and
missed, exit codes, and the bootstrap comparison with a baseline."""
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, f1_score,
                             log_loss, mean_absolute_error, mean_squared_error, ndcg_score,
                             precision_score, r2_score, recall_score, roc_auc_score,
                             top_k_accuracy_score)
from sklearn.model_selection import train_test_split

from conftest import ROOT

DATA = os.path.join(ROOT, "tests", "data", "sklearn")
TOL = 1e-6


@pytest.fixture(scope="module")
def run(kiln_bin, tmp_path_factory):
    """kiln with its metadata store in a temporary KILN_HOME (module-scoped fixtures run
    outside the per-test one)."""
    env = dict(os.environ, KILN_HOME=str(tmp_path_factory.mktemp("kiln-home")))

    def go(*args, check=True):
        p = subprocess.run([kiln_bin, *map(str, args)], capture_output=True, text=True,
                           timeout=300, env=env)
        if check and p.returncode != 0:
            raise AssertionError(f"kiln {' '.join(map(str, args))} exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p
    return go


def add_slicing_columns(df, seed):
    """Columns to slice by that the models never saw: user_type (with missing values),
    device, clinic, a weight and a query id."""
    rng = np.random.default_rng(seed)
    n = len(df)
    df = df.copy()
    df["user_type"] = rng.choice(["new", "returning", ""], size=n, p=[0.45, 0.45, 0.1])
    df["device"] = rng.choice(["mobile", "desktop"], size=n)
    df["w"] = rng.integers(1, 4, size=n)
    df["qid"] = np.arange(n) // 7
    return df


@pytest.fixture(scope="module")
def cancer(run, tmp_path_factory):
    """Binary: breast_cancer split 2:1 (stratified, seed 0); a good gbdt and a weak one."""
    d = tmp_path_factory.mktemp("cancer")
    df = pd.read_csv(os.path.join(DATA, "breast_cancer.csv"))
    train, evl = train_test_split(df, test_size=1 / 3, random_state=0, stratify=df["diagnosis"])
    train.to_csv(d / "train.csv", index=False)
    evl = add_slicing_columns(evl.reset_index(drop=True), seed=1)
    # clinic z sees only benign rows: auc is undefined there.
    evl["clinic"] = np.where(np.arange(len(evl)) % 2 == 0, "a", "b")
    benign = np.flatnonzero(evl["diagnosis"] == "benign")[:6]
    evl.loc[benign, "clinic"] = "z"
    evl.to_csv(d / "eval.csv", index=False)
    for name, params in [("good", "num_rounds: 40, max_depth: 3"),
                         ("weak", "num_rounds: 2, max_depth: 1, learning_rate: 0.1")]:
        (d / f"{name}.yaml").write_text(
            "label: diagnosis\ntask: binary\npositive_class: malignant\n"
            f"model: {{type: gbdt, {params}}}\n")
        run("train", "--config", d / f"{name}.yaml", "--data", d / "train.csv", "--out",
            d / name, "-q")
    run("predict", "--model", d / "good", d / "eval.csv", "--out", d / "good.csv", "-q")
    scores = pd.read_csv(d / "good.csv")["score"].to_numpy()
    return d, pd.read_csv(d / "eval.csv", keep_default_na=False), scores


@pytest.fixture(scope="module")
def digits(run, tmp_path_factory):
    """Multiclass and regression on digits: a 10-class gbdt and a regressor of the digit."""
    d = tmp_path_factory.mktemp("digits")
    df = pd.read_csv(os.path.join(DATA, "digits.csv"))
    train, evl = train_test_split(df, test_size=1 / 3, random_state=0)
    train.to_csv(d / "train.csv", index=False)
    evl = add_slicing_columns(evl.reset_index(drop=True), seed=2)
    evl["ink"] = evl[[f"p{i:02d}" for i in range(64)]].sum(axis=1)
    evl.to_csv(d / "eval.csv", index=False)
    (d / "multi.yaml").write_text("label: digit\ntask: multiclass\n"
                                  "model: {type: gbdt, num_rounds: 8, max_depth: 3}\n")
    (d / "reg.yaml").write_text("label: digit\ntask: regression\n"
                                "model: {type: gbdt, num_rounds: 20, max_depth: 3}\n")
    for name in ("multi", "reg"):
        run("train", "--config", d / f"{name}.yaml", "--data", d / "train.csv", "--out",
            d / name, "-q")
        run("predict", "--model", d / name, d / "eval.csv", "--out", d / f"{name}.csv", "-q")
    return d, pd.read_csv(d / "eval.csv", keep_default_na=False)


def evaluate(run, tmp_path, model, data, config, *extra, check=True):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(config)
    out = tmp_path / "out"
    p = run("evaluate", "--model", model, "--data", data, "--config", cfg, "--out", out, *extra,
            check=False)
    if check:
        assert p.returncode in (0, 3), p.stderr
    evaluation = json.loads((out / "evaluation.json").read_text()) if check else None
    blessing = json.loads((out / "blessing.json").read_text()) if check else None
    return p, evaluation, blessing


def slice_masks(df, specs):
    """Expected slices as {name: boolean mask}, for value specs and crosses of string
    columns (empty = missing) and bucket specs of numeric ones."""
    out = {"overall": np.ones(len(df), bool)}
    for spec in specs:
        if len(spec) == 2 and isinstance(spec[1], list):  # (feature, boundaries)
            feature, bounds = spec
            edges = [-np.inf] + bounds + [np.inf]
            fmt = lambda v: "-inf" if v == -np.inf else "inf" if v == np.inf else f"{v:g}"
            for lo, hi in zip(edges[:-1], edges[1:]):
                mask = (df[feature] >= lo) & (df[feature] < hi)
                if mask.any():
                    out[f"{feature}=[{fmt(lo)},{fmt(hi)})"] = mask.to_numpy()
            continue
        features = list(spec)
        keys = df[features].astype(str).replace("", "(missing)")
        by = features if len(features) > 1 else features[0]
        for values, idx in keys.groupby(by).groups.items():
            values = values if isinstance(values, tuple) else (values,)
            name = ",".join(f"{f}={v}" for f, v in zip(features, values))
            mask = np.zeros(len(df), bool)
            mask[np.asarray(list(idx))] = True
            out[name] = mask
    return out


def close(got, want):
    if want is None or (isinstance(want, float) and np.isnan(want)):
        return got is None
    return got is not None and abs(got - want) <= TOL


def assert_metrics(got, want, where):
    for name, value in want.items():
        assert name in got, (where, name)
        assert close(got[name], value), (where, name, got[name], value)


def binary_expected(y, s, w=None, threshold=0.5):
    pred = (s.astype(np.float32) >= np.float32(threshold)).astype(int)
    two = len(set(y)) == 2
    weights = np.ones(len(y)) if w is None else w
    m = {
        "example_count": len(y),
        "auc": roc_auc_score(y, s, sample_weight=w) if two else None,
        "auc_pr": average_precision_score(y, s, sample_weight=w) if y.any() else None,
        "log_loss": log_loss(y, s, labels=[0, 1], sample_weight=w),
        "accuracy": accuracy_score(y, pred, sample_weight=w),
        "precision": precision_score(y, pred, sample_weight=w, zero_division=np.nan),
        "recall": recall_score(y, pred, sample_weight=w, zero_division=np.nan),
        "f1": f1_score(y, pred, sample_weight=w, zero_division=np.nan),
        "mean_prediction": np.average(s, weights=weights),
        "mean_label": np.average(y, weights=weights),
    }
    m["calibration"] = m["mean_prediction"] / m["mean_label"] if y.any() else None
    if w is not None:
        m["weighted_example_count"] = float(np.sum(w))
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1], sample_weight=w).ravel()
    return m, {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def calibration_expected(y, s, w):
    s32 = s.astype(np.float32)
    bucket = np.zeros(len(s), int)
    for j in range(1, 10):
        bucket[s32 >= np.float32(j / 10)] = j
    rows = []
    for b in range(10):
        m = bucket == b
        rows.append({"count": int(m.sum()), "weight": float(w[m].sum()),
                     "mean_prediction": np.average(s[m], weights=w[m]) if m.any() else None,
                     "mean_label": np.average(y[m], weights=w[m]) if m.any() else None})
    return rows


def ndcg_expected(y, s, q, k):
    values = []
    for qid in pd.unique(q):
        m = q == qid
        if m.sum() >= 2:
            values.append(ndcg_score([y[m]], [s[m]], k=k))
    return float(np.mean(values)) if values else None


BINARY_CONFIG = """
slicing:
  - feature: user_type
  - features: [user_type, device]
  - feature: mean_radius
    boundaries: [12, 16]
  - feature: clinic
ranking: {query_key: qid, k: [3, 10]}
"""
BINARY_SPECS = [("user_type",), ("user_type", "device"), ("mean_radius", [12, 16]), ("clinic",)]


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_metrics_match_sklearn_on_every_slice(run, cancer, tmp_path, weighted):
    d, df, scores = cancer
    config = BINARY_CONFIG + ("weight: w\n" if weighted else "")
    p, ev, blessing = evaluate(run, tmp_path, d / "good", d / "eval.csv", config)
    assert p.returncode == 0 and blessing["status"] == "BLESSED"
    assert ev["task"] == "binary" and ev["label"] == "diagnosis"
    assert ev["classes"] == ["benign", "malignant"]
    assert ev["rows"] == len(df) and ev["rows_without_label"] == 0
    y = (df["diagnosis"] == "malignant").to_numpy().astype(int)
    w = df["w"].to_numpy().astype(float) if weighted else None
    masks = slice_masks(df, BINARY_SPECS)
    got = {s["slice"]: s for s in ev["slices"]}
    assert set(got) == set(masks)
    names = [s["slice"] for s in ev["slices"]]
    assert names[:4] == ["overall", "user_type=new", "user_type=returning",
                         "user_type=(missing)"]
    assert "mean_radius=[-inf,12)" in names and "user_type=new,device=mobile" in names
    for name, mask in masks.items():
        ys, ss = y[mask], scores[mask]
        ws = None if w is None else w[mask]
        want, confusion = binary_expected(ys, ss, ws)
        want["ndcg@3"] = ndcg_expected(ys, ss, df["qid"].to_numpy()[mask], 3)
        want["ndcg@10"] = ndcg_expected(ys, ss, df["qid"].to_numpy()[mask], 10)
        cand = got[name]["candidate"]
        assert_metrics(cand["metrics"], want, name)
        for k, v in confusion.items():
            assert cand["confusion_matrix"][k] == pytest.approx(v, abs=TOL), (name, k)
        table = calibration_expected(ys, ss, np.ones(len(ys)) if ws is None else ws)
        assert len(cand["calibration_table"]) == 10
        for b, (g, e) in enumerate(zip(cand["calibration_table"], table)):
            assert g["lower"] == pytest.approx(b / 10) and g["upper"] == pytest.approx((b + 1) / 10)
            assert g["count"] == e["count"], (name, b)
            assert_metrics(g, {k: e[k] for k in ("weight", "mean_prediction", "mean_label")},
                           (name, b))
    # The single-class slice: auc undefined, reported as null.
    assert got["clinic=z"]["candidate"]["metrics"]["auc"] is None
    assert got["clinic=z"]["example_count"] == 6


# float32 probabilities sum to 1 within float32's precision, not float64's.
@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
def test_multiclass_metrics_match_sklearn(run, digits, tmp_path):
    d, df = digits
    probs = pd.read_csv(d / "multi.csv")[[f"prob_{i}" for i in range(10)]].to_numpy()
    config = ("top_k: 3\nslicing:\n  - feature: device\n  - feature: ink\n"
              "    boundaries: [250, 300]\n")
    p, ev, _ = evaluate(run, tmp_path, d / "multi", d / "eval.csv", config)
    assert p.returncode == 0
    assert ev["classes"] == [str(i) for i in range(10)] and ev["top_k"] == 3
    y = df["digit"].to_numpy()
    masks = slice_masks(df, [("device",), ("ink", [250, 300])])
    got = {s["slice"]: s for s in ev["slices"]}
    assert set(got) == set(masks)
    labels = list(range(10))
    for name, mask in masks.items():
        ys, ps = y[mask], probs[mask]
        pred = ps.argmax(axis=1)
        want = {"example_count": len(ys), "accuracy": accuracy_score(ys, pred),
                "log_loss": log_loss(ys, ps, labels=labels),
                "top_k_accuracy": top_k_accuracy_score(ys, ps, k=3, labels=labels)}
        cand = got[name]["candidate"]
        assert_metrics(cand["metrics"], want, name)
        assert cand["confusion_matrix"]["classes"] == [str(i) for i in labels]
        assert np.array_equal(np.array(cand["confusion_matrix"]["matrix"]),
                              confusion_matrix(ys, pred, labels=labels)), name


def test_regression_and_ranking_metrics_match_sklearn(run, digits, tmp_path):
    d, df = digits
    s = pd.read_csv(d / "reg.csv")["prediction"].to_numpy()
    config = "weight: w\nranking: {query_key: qid, k: [5]}\nslicing: [{feature: user_type}]\n"
    p, ev, _ = evaluate(run, tmp_path, d / "reg", d / "eval.csv", config)
    assert p.returncode == 0
    y = df["digit"].to_numpy().astype(float)
    w = df["w"].to_numpy().astype(float)
    q = df["qid"].to_numpy()
    masks = slice_masks(df, [("user_type",)])
    got = {x["slice"]: x for x in ev["slices"]}
    assert set(got) == set(masks)
    for name, mask in masks.items():
        ys, ss, ws = y[mask], s[mask], w[mask]
        want = {"example_count": len(ys), "weighted_example_count": ws.sum(),
                "rmse": np.sqrt(mean_squared_error(ys, ss, sample_weight=ws)),
                "mae": mean_absolute_error(ys, ss, sample_weight=ws),
                "r2": r2_score(ys, ss, sample_weight=ws),
                "mean_prediction": np.average(ss, weights=ws),
                "mean_label": np.average(ys, weights=ws),
                # ndcg is the unweighted mean over the slice's queries of 2+ rows.
                "ndcg@5": ndcg_expected(ys, ss, q[mask], 5)}
        assert_metrics(got[name]["candidate"]["metrics"], want, name)
        assert got[name]["candidate"]["queries"] == sum(
            1 for qid in pd.unique(q[mask]) if (q[mask] == qid).sum() >= 2)


def test_a_threshold_met_blesses_and_one_missed_does_not(run, cancer, tmp_path):
    d, df, _ = cancer
    config = BINARY_CONFIG + ("thresholds:\n"
                              "  - {metric: auc, lower: 0.9}\n"
                              "  - {metric: log_loss, upper: 0.5, slices: [user_type]}\n")
    p, ev, blessing = evaluate(run, tmp_path / "met", d / "good", d / "eval.csv", config)
    assert p.returncode == 0, p.stdout + p.stderr
    assert blessing == {"blessed": True, "status": "BLESSED", "candidate": str(d / "good"),
                        "baseline": None, "failing_checks": []}
    assert [c["status"] for c in ev["checks"]] == ["pass"] * 4
    assert "BLESSED" in p.stdout and "overall" in p.stdout and "auc_pr" in p.stdout

    missed = BINARY_CONFIG + ("thresholds:\n"
                              "  - {metric: auc, lower: 0.9}\n"
                              "  - {metric: accuracy, lower: 0.9999, slices: [overall, "
                              "\"user_type=new\"]}\n"
                              "  - {metric: auc, lower: 0.5, slices: [clinic]}\n")
    p, ev, blessing = evaluate(run, tmp_path / "missed", d / "good", d / "eval.csv", missed)
    assert p.returncode == 3, p.stdout + p.stderr
    assert blessing["blessed"] is False and blessing["status"] == "NOT_BLESSED"
    failing = {(c["metric"], c["slice"]) for c in blessing["failing_checks"]}
    assert failing == {("accuracy", "overall"), ("accuracy", "user_type=new"),
                       ("auc", "clinic=z")}
    why = {c["slice"]: c["reason"] for c in blessing["failing_checks"] if c["metric"] == "auc"}
    assert why["clinic=z"] == "auc on clinic=z is undefined: it needs rows of both classes"
    assert "NOT_BLESSED" in p.stdout and "FAIL lower: accuracy on overall is" in p.stdout
    assert sum(c["status"] == "pass" for c in ev["checks"]) == 3  # auc overall, clinic a, b


def test_same_model_as_baseline_passes_the_change_threshold(run, cancer, tmp_path):
    d, *_ = cancer
    config = BINARY_CONFIG + ("thresholds:\n"
                              "  - {metric: auc, change: {absolute: 0}, slices: [overall, "
                              "user_type]}\n"
                              "  - {metric: log_loss, change: {relative: 0}}\n"
                              "bootstrap: {samples: 100, seed: 5}\n")
    p, ev, blessing = evaluate(run, tmp_path, d / "good", d / "eval.csv", config, "--baseline",
                               d / "good")
    assert p.returncode == 0, p.stdout + p.stderr
    assert blessing["blessed"] is True and blessing["baseline"] == str(d / "good")
    assert ev["bootstrap"] == {"samples": 100, "seed": 5, "confidence": 0.95}
    for s in ev["slices"]:
        assert s["baseline"]["metrics"] == s["candidate"]["metrics"]
        change = s["changes"]["auc"]
        if s["candidate"]["metrics"]["auc"] is None:
            assert change["absolute"] is None and change["absolute_ci"] is None
            continue
        assert change["absolute"] == 0 and change["absolute_ci"] == [0, 0]
        # Resamples of a small slice may hold one class only (auc undefined there).
        assert change["resamples"] == 100 if s["slice"] == "overall" else \
            change["resamples"] >= 50
    checks = [c for c in ev["checks"] if c["kind"] == "change_absolute"]
    assert len(checks) == 4 and all(c["status"] == "pass" for c in checks)
    assert all(c["interval"] == [0, 0] for c in checks)
    assert "candidate - baseline" in p.stdout


def test_a_significantly_worse_candidate_is_not_blessed(run, cancer, tmp_path):
    d, *_ = cancer
    config = ("slicing: [{feature: device}]\nthresholds:\n"
              "  - {metric: auc, change: {absolute: -0.01}}\n"
              "  - {metric: log_loss, change: {absolute: -0.01}, slices: all}\n")
    p, ev, blessing = evaluate(run, tmp_path, d / "weak", d / "eval.csv", config, "--baseline",
                               d / "good")
    assert p.returncode == 3, p.stdout + p.stderr
    failing = {(c["metric"], c["slice"], c["kind"]) for c in blessing["failing_checks"]}
    assert ("auc", "overall", "change_absolute") in failing
    assert ("log_loss", "device=mobile", "change_absolute") in failing
    auc = next(c for c in ev["checks"] if c["metric"] == "auc")
    overall = ev["slices"][0]
    assert auc["value"] == pytest.approx(overall["changes"]["auc"]["absolute"], abs=1e-12)
    assert auc["interval"][1] < -0.01
    assert "significantly below the required -0.01" in auc["reason"]
    # Deterministic: the same seed gives the same intervals.
    p2, ev2, _ = evaluate(run, tmp_path / "again", d / "weak", d / "eval.csv", config,
                          "--baseline", d / "good")
    assert ev2["slices"] == ev["slices"] and ev2["checks"] == ev["checks"]


def test_change_thresholds_are_skipped_without_a_baseline(run, cancer, tmp_path):
    d, *_ = cancer
    p, ev, blessing = evaluate(run, tmp_path, d / "good", d / "eval.csv",
                               "thresholds: [{metric: auc, change: {absolute: 0.5}}]\n")
    assert p.returncode == 0 and blessing["blessed"] is True
    assert ev["checks"][0]["status"] == "skipped"
    assert "no baseline" in ev["checks"][0]["reason"]


def test_usage_errors_exit_2_naming_the_fault(run, cancer, tmp_path):
    d, *_ = cancer
    p, _, _ = evaluate(run, tmp_path, d / "good", d / "eval.csv", "slicing: []\ntreshold: 1\n",
                       check=False)
    assert p.returncode == 2
    assert "eval.yaml line 2: unknown key 'treshold'" in p.stderr
    p, _, _ = evaluate(run, tmp_path, d / "good", d / "eval.csv", "label: nope\n", check=False)
    assert p.returncode == 2 and "has no label column 'nope'" in p.stderr
    p, _, _ = evaluate(run, tmp_path, d / "good", d / "eval.csv",
                       "thresholds: [{metric: rmse, upper: 1}]\n", check=False)
    assert p.returncode == 2 and "unknown metric 'rmse'" in p.stderr
    assert not (tmp_path / "out" / "blessing.json").exists()


def test_help_teaches_the_config_and_exit_codes(run):
    out = run("evaluate", "--help").stdout
    assert "Example eval.yaml" in out and "thresholds:" in out and "boundaries:" in out
    assert "3 not blessed" in out and "Without --baseline, change thresholds are skipped" in out

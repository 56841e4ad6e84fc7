"""End-to-end: a model trained with xgboost-python, imported with `kiln import-model`,
predicts through kiln exactly as it does in Python."""
import csv
import json
import os
import subprocess

import numpy as np
import pytest
import xgboost
from sklearn.model_selection import train_test_split

from conftest import ROOT

DATA = os.path.join(ROOT, "tests", "data", "sklearn", "breast_cancer.csv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("imp")
    with open(DATA, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    train, evl = train_test_split(rows, test_size=1 / 3, random_state=1)
    with open(d / "eval.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + evl)
    x = np.array([[float(v) for v in r[:-1]] for r in train])
    y = np.array([r[-1] == "malignant" for r in train], dtype=int)
    clf = xgboost.XGBClassifier(n_estimators=50, max_depth=3, tree_method="hist")
    clf.fit(x, y)
    clf.get_booster().save_model(str(d / "model.json"))
    clf.get_booster().save_model(str(d / "model.ubj"))
    (d / "signature.yaml").write_text(
        "task: binary\nclasses: [benign, malignant]\ninputs: [" + ", ".join(header[:-1]) + "]\n")
    x_eval = np.array([[float(v) for v in r[:-1]] for r in evl])
    return d, clf.predict_proba(x_eval)[:, 1]


@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_imported_xgboost_predicts_as_in_python(kiln, trained, tmp_path, fmt):
    d, expected = trained
    kiln("import-model", "--model", d / f"model.{fmt}", "--signature", d / "signature.yaml",
         "--out", tmp_path / "m")
    manifest = json.load(open(tmp_path / "m" / "manifest.json"))
    assert manifest["model_type"] == "gbdt" and manifest["config"]["task"] == "binary"
    kiln("predict", "--model", tmp_path / "m", d / "eval.csv", "--out", tmp_path / "s.csv", "-q")
    with open(tmp_path / "s.csv") as f:
        scores = np.array([float(r["score"]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)


def test_import_errors(kiln, trained, tmp_path):
    d, _ = trained
    (tmp_path / "junk.json").write_text('{"not": "a model"}')
    r = kiln("import-model", "--model", tmp_path / "junk.json", "--signature",
             d / "signature.yaml", "--out", tmp_path / "m", check=False)
    assert r.returncode == 2 and "not a model XGBoost can load" in r.stderr
    (tmp_path / "short.yaml").write_text("task: binary\ninputs: [a, b]\n")
    r = kiln("import-model", "--model", d / "model.json", "--signature", tmp_path / "short.yaml",
             "--out", tmp_path / "m", check=False)
    assert r.returncode == 2 and "the model uses 30 features; the signature names 2" in r.stderr
    (tmp_path / "multi.yaml").write_text("task: multiclass\ninputs: [a]\n")
    r = kiln("import-model", "--model", d / "model.json", "--signature", tmp_path / "multi.yaml",
             "--out", tmp_path / "m", check=False)
    assert r.returncode == 2 and "needs `classes:`" in r.stderr
    assert not (tmp_path / "m").exists()


def test_missing_values_reach_xgboost_as_missing(kiln, tmp_path):
    """XGBoost learns where a missing value goes: kiln must hand it NaN, not a number,
    both for an imported model and for the gbdt it trains (whose default transform passes
    numbers through)."""
    with open(DATA, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    rng = np.random.default_rng(5)
    x = np.array([[float(v) for v in r[:-1]] for r in rows])
    x[rng.random(x.shape) < 0.2] = np.nan  # a fifth of the values missing
    y = np.array([r[-1] == "malignant" for r in rows], dtype=int)
    path = tmp_path / "holes.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for xi, r in zip(x, rows):
            w.writerow(["" if np.isnan(v) else repr(float(v)) for v in xi] + [r[-1]])
    clf = xgboost.XGBClassifier(n_estimators=30, max_depth=3, tree_method="hist")
    clf.fit(x, y)
    clf.get_booster().save_model(str(tmp_path / "m.json"))
    (tmp_path / "sig.yaml").write_text(
        "task: binary\nclasses: [benign, malignant]\ninputs: [" + ", ".join(header[:-1]) + "]\n")
    kiln("import-model", "--model", tmp_path / "m.json", "--signature", tmp_path / "sig.yaml",
         "--out", tmp_path / "imported")
    kiln("predict", "--model", tmp_path / "imported", path, "--out", tmp_path / "s.csv", "-q")
    with open(tmp_path / "s.csv") as f:
        scores = np.array([float(r["score"]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(scores, clf.predict_proba(x)[:, 1], rtol=0, atol=1e-6)

    # Trained by kiln on the same rows: the trees xgboost-python grows with NaN (its
    # intercept fixed at 0.5, as in the XGBoost 1.x that kiln links).
    (tmp_path / "t.yaml").write_text(
        "label: diagnosis\ntask: binary\npositive_class: malignant\n"
        "model: {type: gbdt, num_rounds: 30, max_depth: 3}\ntraining: {threads: 1}\n")
    kiln("train", "--config", tmp_path / "t.yaml", "--data", path, "--eval-data", path,
         "--out", tmp_path / "trained", "-q")
    kiln("predict", "--model", tmp_path / "trained", path, "--out", tmp_path / "t.csv", "-q")
    with open(tmp_path / "t.csv") as f:
        trained = np.array([float(r["score"]) for r in csv.DictReader(f)])
    ref = xgboost.XGBClassifier(n_estimators=30, max_depth=3, tree_method="hist", n_jobs=1,
                                learning_rate=0.1, base_score=0.5)
    ref.fit(x, y)
    np.testing.assert_allclose(trained, ref.predict_proba(x)[:, 1], rtol=0, atol=1e-5)


# --- TorchScript ------------------------------------------------------------------------

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-torch (the .venv's Python has no torch)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """TorchScript models saved by PyTorch itself, with PyTorch's scores for every row."""
    d = tmp_path_factory.mktemp("ts")
    subprocess.run([SYSTEM_PYTHON, os.path.join(ROOT, "tests", "tools", "make_torchscript.py"),
                    DATA, "diagnosis", str(d)], check=True, timeout=300)
    ref = json.load(open(d / "expected.json"))
    return d, ref["inputs"], ref["scores"]


def import_scripted(kiln, d, inputs, name, task, extra, out, check=True):
    sig = out.parent / f"{out.name}.yaml"
    sig.write_text(f"task: {task}\n{extra}inputs: [{', '.join(inputs)}]\n")
    return kiln("import-model", "--model", d / f"{name}.pt", "--signature", sig, "--out", out,
                check=check)


@pytest.mark.parametrize("name,task,extra,column", [
    ("binary_logits", "binary", "classes: [benign, malignant]\noutput: logits\n", "score"),
    ("binary_probs", "binary", "classes: [benign, malignant]\n", "score"),
    ("regression", "regression", "", "prediction"),
])
def test_imported_torchscript_predicts_as_in_pytorch(kiln, scripted, tmp_path, name, task,
                                                     extra, column):
    d, inputs, scores = scripted
    out = tmp_path / "m"
    import_scripted(kiln, d, inputs, name, task, extra, out)
    manifest = json.load(open(out / "manifest.json"))
    assert manifest["backend"] == "torch" and manifest["model_type"] == "torchscript"
    kiln("predict", "--model", out, DATA, "--out", tmp_path / "s.csv", "-q")
    with open(tmp_path / "s.csv") as f:
        got = np.array([float(r[column]) for r in csv.DictReader(f)])
    np.testing.assert_allclose(got, scores[name], rtol=1e-5, atol=1e-6)


def test_imported_torchscript_multiclass(kiln, scripted, tmp_path):
    d, inputs, scores = scripted
    out = tmp_path / "m"
    import_scripted(kiln, d, inputs, "multiclass", "multiclass", "classes: [low, mid, high]\n",
                    out)
    kiln("predict", "--model", out, DATA, "--out", tmp_path / "s.csv", "-q")
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    got = np.array([[float(r[f"prob_{c}"]) for c in ("low", "mid", "high")] for r in rows])
    np.testing.assert_allclose(got, scores["multiclass"], rtol=1e-5, atol=1e-6)
    assert [r["class"] for r in rows] == \
        [("low", "mid", "high")[int(np.argmax(p))] for p in scores["multiclass"]]


def test_torchscript_import_errors(kiln, scripted, trained, tmp_path):
    d, inputs, _ = scripted
    cases = [
        # One input short: PyTorch's own message says what does not fit.
        ("binary_probs", "binary", "", inputs[:-1],
         "must match the size of tensor b (30)"),
        ("binary_probs", "multiclass", "classes: [a, b, c]\n", inputs,
         "returned shape [2] for 2 rows; a multiclass model returns [rows, 3]"),
        ("binary_probs", "binary", "output: scores\n", inputs,
         "output is 'scores'; expected probabilities or logits"),
    ]
    for i, (name, task, extra, ins, message) in enumerate(cases):
        out = tmp_path / f"m{i}"
        r = import_scripted(kiln, d, ins, name, task, extra, out, check=False)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr, r.stderr
        assert not out.exists()
    # A zip that is not TorchScript.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    sig = tmp_path / "sig.yaml"
    sig.write_text(f"task: binary\ninputs: [{', '.join(inputs)}]\n")
    r = kiln("import-model", "--model", bad, "--signature", sig, "--out", tmp_path / "b",
             check=False)
    assert r.returncode == 2 and "is not a TorchScript model libtorch can load" in r.stderr
    # `output` is for TorchScript only.
    sig.write_text(f"task: binary\noutput: logits\ninputs: [{', '.join(inputs)}]\n")
    r = kiln("import-model", "--model", trained[0] / "model.json", "--signature", sig, "--out",
             tmp_path / "c", check=False)
    assert r.returncode == 2 and "`output` applies to TorchScript models" in r.stderr
    # Nothing is left beside the destinations.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".yaml")) == \
        ["bad.pt"]
    # A torchscript bundle is not a model type to train.
    cfg = tmp_path / "t.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\nmodel: {type: torchscript}\n")
    r = kiln("train", "--config", cfg, "--data", DATA, "--out", tmp_path / "t", check=False)
    assert r.returncode == 2 and "unknown model type 'torchscript'" not in r.stderr
    assert "is imported with kiln import-model, not trained" in r.stderr

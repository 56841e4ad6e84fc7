"""End-to-end: `kiln train` and `kiln predict` on real datasets, against scikit-learn and
xgboost-python on the same split; the bundle's integrity checks, encryption, TensorBoard
logs and metadata record."""
import csv
import json
import os

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from conftest import ROOT

DATA = os.path.join(ROOT, "tests", "data", "sklearn")
KEY = "ab" * 32


def load(name):
    with open(os.path.join(DATA, name), newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture(scope="module")
def cancer_split(tmp_path_factory):
    """breast_cancer split 2:1, stratified, seed 0; written as train.csv / eval.csv."""
    d = tmp_path_factory.mktemp("cancer")
    header, rows = load("breast_cancer.csv")
    labels = [r[-1] for r in rows]
    train, evl = train_test_split(rows, test_size=1 / 3, random_state=0, stratify=labels)
    write_csv(d / "train.csv", header, train)
    write_csv(d / "eval.csv", header, evl)
    (d / "train.yaml").write_text(
        "label: diagnosis\ntask: binary\npositive_class: malignant\n"
        "model: {type: gbdt, num_rounds: 200, max_depth: 6, learning_rate: 0.1}\n")
    return d, header, train, evl


def xy(header, rows, label, positive=None):
    x = np.array([[float(v) for v in r[:-1]] for r in rows])
    y = np.array([(1 if r[-1] == positive else 0) if positive else int(r[-1]) for r in rows])
    return x, y


def test_gbdt_matches_xgboost_python_on_the_same_split(kiln, cancer_split, tmp_path):
    d, header, train, evl = cancer_split
    out = tmp_path / "model"
    kiln("train", "--config", d / "train.yaml", "--data", d / "train.csv",
         "--eval-data", d / "eval.csv", "--out", out, "-q")
    manifest = json.load(open(out / "manifest.json"))
    assert manifest["backend"] == "xgboost"
    assert manifest["config"]["classes"] == ["benign", "malignant"]
    kiln_auc = manifest["config"]["metrics"]["eval"]["auc"]
    assert kiln_auc >= 0.98

    # The scores kiln predict writes give that AUC under scikit-learn's implementation.
    kiln("predict", "--model", out, d / "eval.csv", "--out", tmp_path / "scores.csv", "-q")
    with open(tmp_path / "scores.csv") as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    assert len(scores) == len(evl)
    x_eval, y_eval = xy(header, evl, "diagnosis", "malignant")
    assert roc_auc_score(y_eval, scores) == pytest.approx(kiln_auc, abs=1e-12)

    # xgboost-python, same data, same parameters, no transform (trees do not care about
    # kiln's monotone z-scoring).
    import xgboost
    x_train, y_train = xy(header, train, "diagnosis", "malignant")
    clf = xgboost.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1,
                                tree_method="hist", random_state=42, n_jobs=2)
    clf.fit(x_train, y_train)
    py_auc = roc_auc_score(y_eval, clf.predict_proba(x_eval)[:, 1])
    assert abs(kiln_auc - py_auc) <= 0.01, (kiln_auc, py_auc)


def test_training_is_deterministic_and_logs_to_tensorboard(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    for name in ("a", "b"):
        kiln("train", "--config", d / "train.yaml", "--data", d / "train.csv",
             "--eval-data", d / "eval.csv", "--out", tmp_path / name, "-q")
    a = (tmp_path / "a" / "model" / "xgboost.json").read_bytes()
    assert a == (tmp_path / "b" / "model" / "xgboost.json").read_bytes()
    assert (tmp_path / "a" / "transform.json").read_bytes() == \
        (tmp_path / "b" / "transform.json").read_bytes()

    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(str(tmp_path / "a" / "logs"),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert {"eval/auc", "eval/log_loss", "eval/accuracy"} <= set(tags)
    auc = acc.Tensors("eval/auc")
    assert [e.step for e in auc] == list(range(1, 201))
    manifest = json.load(open(tmp_path / "a" / "manifest.json"))
    last = float(np.frombuffer(auc[-1].tensor_proto.tensor_content, np.float32)[0]) \
        if auc[-1].tensor_proto.tensor_content else auc[-1].tensor_proto.float_val[0]
    assert last == pytest.approx(manifest["config"]["metrics"]["eval"]["auc"], abs=1e-6)


def test_early_stopping_keeps_the_best_round(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    cfg = tmp_path / "es.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   "model: {type: gbdt, num_rounds: 500}\n"
                   "training: {early_stopping: {metric: log_loss, patience: 10}}\n")
    kiln("train", "--config", cfg, "--data", d / "train.csv", "--eval-data", d / "eval.csv",
         "--out", tmp_path / "m", "-q")
    summary = json.load(open(tmp_path / "m" / "manifest.json"))["config"]["model_summary"]
    assert summary["rounds"] == summary["best_round"] < 500
    model = json.load(open(tmp_path / "m" / "model" / "xgboost.json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    assert len(trees) == summary["rounds"]


def test_multiclass_digits(kiln, tmp_path):
    header, rows = load("digits.csv")
    train, evl = train_test_split(rows, test_size=1 / 3, random_state=0)
    write_csv(tmp_path / "train.csv", header, train)
    write_csv(tmp_path / "eval.csv", header, evl)
    (tmp_path / "t.yaml").write_text("label: digit\ntask: multiclass\n"
                                     "model: {type: gbdt, num_rounds: 60, max_depth: 4}\n")
    kiln("train", "--config", tmp_path / "t.yaml", "--data", tmp_path / "train.csv",
         "--eval-data", tmp_path / "eval.csv", "--out", tmp_path / "m", "-q")
    kiln("predict", "--model", tmp_path / "m", tmp_path / "eval.csv",
         "--out", tmp_path / "p.jsonl", "-q")
    preds = [json.loads(line) for line in open(tmp_path / "p.jsonl")]
    assert len(preds) == len(evl)
    assert set(preds[0]) == {"class"} | {f"prob_{i}" for i in range(10)}
    assert all(abs(sum(p[f"prob_{i}"] for i in range(10)) - 1) < 1e-4 for p in preds)
    acc = accuracy_score([r[-1] for r in evl], [p["class"] for p in preds])
    manifest = json.load(open(tmp_path / "m" / "manifest.json"))
    assert manifest["config"]["metrics"]["eval"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert acc >= 0.93


def test_regression_and_the_default_split(kiln, tmp_path):
    header, rows = load("breast_cancer.csv")
    write_csv(tmp_path / "all.csv", header[:-1], [r[:-1] for r in rows])
    (tmp_path / "r.yaml").write_text("label: mean_area\ntask: regression\n"
                                     "model: {type: gbdt, num_rounds: 100}\n")
    r = kiln("train", "--config", tmp_path / "r.yaml", "--data", tmp_path / "all.csv",
             "--out", tmp_path / "m")
    manifest = json.load(open(tmp_path / "m" / "manifest.json"))
    prov = manifest["provenance"]
    assert int(prov["train_rows"]) + int(prov["eval_rows"]) == len(rows)
    # 2:1 by hash: close to a third held out.
    assert abs(int(prov["eval_rows"]) / len(rows) - 1 / 3) < 0.06
    assert manifest["config"]["metrics"]["eval"]["r2"] > 0.95  # area follows radius
    assert "rmse" in r.stdout


def test_tampered_and_encrypted_bundles(kiln, cancer_split, tmp_path, monkeypatch):
    d, *_ = cancer_split
    args = ["--config", d / "train.yaml", "--data", d / "train.csv", "--eval-data",
            d / "eval.csv", "-q"]
    kiln("train", *args, "--out", tmp_path / "plain")
    kiln("predict", "--model", tmp_path / "plain", d / "eval.csv", "--out", tmp_path / "a.csv",
         "-q")
    # Encrypted with a key from the environment: weights are not readable without it.
    monkeypatch.setenv("KILN_MODEL_KEY", KEY)
    kiln("train", *args, "--out", tmp_path / "sealed")
    sealed = json.load(open(tmp_path / "sealed" / "manifest.json"))
    assert sealed["encryption"]["algorithm"] == "AES-256-GCM"
    assert b"learner" not in (tmp_path / "sealed" / "model" / "xgboost.json").read_bytes()
    kiln("predict", "--model", tmp_path / "sealed", d / "eval.csv", "--out",
         tmp_path / "b.csv", "-q")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    monkeypatch.delenv("KILN_MODEL_KEY")
    r = kiln("predict", "--model", tmp_path / "sealed", d / "eval.csv", "--out",
             tmp_path / "c.csv", check=False)
    assert r.returncode == 2 and "KILN_MODEL_KEY" in r.stderr
    monkeypatch.setenv("KILN_MODEL_KEY", "cd" * 32)
    r = kiln("predict", "--model", tmp_path / "sealed", d / "eval.csv", "--out",
             tmp_path / "c.csv", check=False)
    assert r.returncode != 0 and "key" in r.stderr
    monkeypatch.delenv("KILN_MODEL_KEY")
    # One flipped byte in the weights: refused before use, naming the file.
    w = tmp_path / "plain" / "model" / "xgboost.json"
    data = bytearray(w.read_bytes())
    data[100] ^= 1
    w.write_bytes(bytes(data))
    r = kiln("predict", "--model", tmp_path / "plain", d / "eval.csv", "--out",
             tmp_path / "d.csv", check=False)
    assert r.returncode == 2
    assert "model/xgboost.json does not match its SHA-256" in r.stderr
    assert not (tmp_path / "d.csv").exists()


def test_config_errors_name_what_is_wrong(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    cases = {
        "label: diagnosis\ntask: binary\nmodel: {type: forest}\n": "model types: gbdt",
        "label: nope\ntask: binary\nmodel: {type: gbdt}\n": "label column 'nope' is not in",
        "label: diagnosis\ntask: binary\nmodel: {type: gbdt}\n": None,  # valid
        "label: diagnosis\ntask: ranking\nmodel: {type: gbdt}\n": "unknown task 'ranking'",
        "label: diagnosis\ntask: binary\nmodel: {type: gbdt}\nepochs: 3\n": "unknown key 'epochs'",
        "label: diagnosis\ntask: binary\npositive_class: yes\nmodel: {type: gbdt}\n":
            "positive_class 'yes' is not a value",
    }
    for i, (text, message) in enumerate(cases.items()):
        cfg = tmp_path / f"c{i}.yaml"
        cfg.write_text(text)
        r = kiln("train", "--config", cfg, "--data", d / "train.csv", "--out",
                 tmp_path / f"m{i}", "-q", check=False)
        if message is None:
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode == 2, (text, r.stderr)
            assert message in r.stderr, (text, r.stderr)
            assert not (tmp_path / f"m{i}").exists()


def test_training_is_recorded_in_metadata(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    kiln("train", "--config", d / "train.yaml", "--data", d / "train.csv", "--out",
         tmp_path / "m", "-q")
    models = json.loads(kiln("meta", "ls", "artifacts", "--type", "Model", "--json").stdout)
    assert len(models) == 1
    assert models[0]["uri"] == str(tmp_path / "m")
    manifest = json.load(open(tmp_path / "m" / "manifest.json"))
    assert models[0]["custom_properties"]["eval.auc"] == \
        pytest.approx(manifest["config"]["metrics"]["eval"]["auc"])
    g = json.loads(kiln("lineage", models[0]["id"], "--format", "json").stdout)
    (trainer,) = g["executions"]
    assert trainer["type"] == "Trainer"
    assert trainer["custom_properties"]["model.num_rounds"] == 200

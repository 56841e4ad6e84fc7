"""End-to-end: `kiln train` and `kiln predict` on real datasets, against scikit-learn and
xgboost-python on the same split; the bundle's integrity checks, encryption, TensorBoard
logs and metadata record."""
import csv
import hashlib
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
    import hashlib
    assert prov["data_fingerprint"] == hashlib.sha256((tmp_path / "all.csv").read_bytes()).hexdigest()
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


def test_warmup_rows_reproduce_the_model_or_it_is_refused(kiln, cancer_split, tmp_path):
    d, header, train, evl = cancer_split
    out = tmp_path / "m"
    kiln("train", "--config", d / "train.yaml", "--data", d / "train.csv", "--eval-data",
         d / "eval.csv", "--out", out, "-q")
    lines = [json.loads(l) for l in (out / "warmup.jsonl").read_text().splitlines()]
    assert len(lines) == 10
    # The first eval rows' raw inputs (the label is not an input), with the scores
    # `kiln predict` gives those rows.
    for line, row in zip(lines, evl):
        assert line["inputs"] == {h: float(v) if "." in v or "e" in v else int(v)
                                  for h, v in zip(header[:-1], row[:-1])}
    write_csv(tmp_path / "first.csv", header, evl[:10])
    scores = predicted_scores(kiln, out, tmp_path / "first.csv", tmp_path)
    assert [l["expected"][0] for l in lines] == pytest.approx(scores, abs=1e-6)

    # A bundle whose model no longer gives its recorded outputs is refused at load, even
    # when its manifest was rewritten to match the changed file.
    lines[3]["expected"][0] = 1 - lines[3]["expected"][0]
    text = "".join(json.dumps(l) + "\n" for l in lines)
    (out / "warmup.jsonl").write_text(text)
    manifest = json.load(open(out / "manifest.json"))
    for f in manifest["files"]:
        if f["path"] == "warmup.jsonl":
            f["sha256"] = hashlib.sha256(text.encode()).hexdigest()
            f["bytes"] = len(text.encode())
    (out / "manifest.json").write_text(json.dumps(manifest))
    r = kiln("predict", "--model", out, d / "eval.csv", "--out", tmp_path / "x.csv",
             check=False)
    assert r.returncode == 2, r.stderr
    assert "warm-up: row 3 scores" in r.stderr and "does not reproduce its own outputs" in r.stderr


def test_types_that_change_along_the_file(kiln, tmp_path):
    """Column types are those of the whole file, though the file is read in one pass:
    integers that turn into decimals later are FLOAT; a column that turns into text later
    is STRING, with its earlier values as written ("007", not 7)."""
    import random
    rng = random.Random(3)
    rows = []
    for i in range(40000):
        late = i >= 30000  # well past the first blocks
        code = rng.choice(["007", "12", "3"]) if not late else rng.choice(["007", "A9"])
        x = rng.randint(0, 9) if not late else round(rng.random() * 9, 3)
        label = int(code == "007") if rng.random() < 0.9 else rng.randint(0, 1)
        rows.append([code, x, label])
    write_csv(tmp_path / "d.csv", ["code", "x", "y"], rows)
    (tmp_path / "t.yaml").write_text("label: y\ntask: binary\nmodel: {type: gbdt, num_rounds: 5}\n")
    kiln("train", "--config", tmp_path / "t.yaml", "--data", tmp_path / "d.csv", "--out",
         tmp_path / "m", "-q")
    inputs = {i["name"]: i["dtype"] for i in
              json.load(open(tmp_path / "m" / "manifest.json"))["signature"]["inputs"]}
    assert inputs == {"code": "string", "x": "float64"}
    transform = (tmp_path / "m" / "transform.json").read_text()
    assert '"007"' in transform and '"A9"' in transform
    # The bundle's predictions read the same file the same way.
    kiln("predict", "--model", tmp_path / "m", tmp_path / "d.csv", "--out", tmp_path / "p.csv",
         "-q")
    with open(tmp_path / "p.csv") as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    with_007 = [s for s, r in zip(scores, rows) if r[0] == "007"]
    others = [s for s, r in zip(scores, rows) if r[0] != "007"]
    assert sum(with_007) / len(with_007) > sum(others) / len(others) + 0.25


def test_config_errors_name_what_is_wrong(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    cases = {
        "label: diagnosis\ntask: binary\nmodel: {type: forest}\n": "model types: cnn, gbdt, linear, mlp, wide_deep",
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


# --- libtorch models: linear, mlp, wide_deep, cnn ---------------------------------------

def train_torch(kiln, d, tmp_path, name, model, training="{eval_every: 1000}", transform=""):
    """Trains on the cancer split with a `model:` section; returns (bundle dir, manifest)."""
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   f"model: {model}\ntraining: {training}\n{transform}")
    out = tmp_path / name
    kiln("train", "--config", cfg, "--data", d / "train.csv", "--eval-data", d / "eval.csv",
         "--out", out, "-q")
    return out, json.load(open(out / "manifest.json"))


def predicted_scores(kiln, model, data, tmp_path):
    kiln("predict", "--model", model, data, "--out", tmp_path / "scores.csv", "-q")
    with open(tmp_path / "scores.csv") as f:
        return [float(r["score"]) for r in csv.DictReader(f)]


def test_linear_matches_sklearn_logistic_regression(kiln, cancer_split, tmp_path):
    d, header, train, evl = cancer_split
    # The objective scikit-learn minimises, sum(log loss) + |w|^2 / (2 C), per row: the mean
    # log loss + (l2 / 2) |w|^2 with l2 = 1 / (C n), C = 1 (its default).
    l2 = 1 / len(train)
    out, manifest = train_torch(
        kiln, d, tmp_path, "linear",
        f"{{type: linear, optimizer: sgd, learning_rate: 0.05, l2: {l2}, batch_size: 32, "
        "epochs: 100}")
    assert manifest["backend"] == "torch" and manifest["model_type"] == "linear"
    assert set(os.listdir(out / "model")) == {"arch.json", "weights.pt"}
    kiln_auc = manifest["config"]["metrics"]["eval"]["auc"]
    assert kiln_auc >= 0.98

    # kiln predict's scores give that AUC under scikit-learn's implementation.
    scores = predicted_scores(kiln, out, d / "eval.csv", tmp_path)
    x_eval, y_eval = xy(header, evl, "diagnosis", "malignant")
    assert roc_auc_score(y_eval, scores) == pytest.approx(kiln_auc, abs=1e-12)

    # scikit-learn on the same split, z-scored like kiln's default transform.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    x_train, y_train = xy(header, train, "diagnosis", "malignant")
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=5000).fit(scaler.transform(x_train), y_train)
    py_auc = roc_auc_score(y_eval, clf.predict_proba(scaler.transform(x_eval))[:, 1])
    assert abs(kiln_auc - py_auc) <= 0.01, (kiln_auc, py_auc)


def test_torch_training_is_deterministic(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    model = "{type: mlp, hidden_units: [16, 8], dropout: 0.2, epochs: 10, batch_size: 64}"
    a, _ = train_torch(kiln, d, tmp_path, "a", model)
    b, _ = train_torch(kiln, d, tmp_path, "b", model)
    weights = (a / "model" / "weights.pt").read_bytes()
    assert len(weights) > 1000
    assert weights == (b / "model" / "weights.pt").read_bytes()
    assert (a / "model" / "arch.json").read_bytes() == (b / "model" / "arch.json").read_bytes()
    c, _ = train_torch(kiln, d, tmp_path, "c", model, "{seed: 7, eval_every: 1000}")
    assert weights != (c / "model" / "weights.pt").read_bytes()


@pytest.mark.parametrize("optimizer", [
    "sgd, learning_rate: 0.01, momentum: 0.9",
    "adam, learning_rate: 0.05",
    "adagrad, learning_rate: 0.1",
    "ftrl, learning_rate: 0.5, l1: 0.001, l2: 0.01",
])
def test_each_optimizer_trains_linear(kiln, cancer_split, tmp_path, optimizer):
    d, *_ = cancer_split
    _, manifest = train_torch(
        kiln, d, tmp_path, "m",
        f"{{type: linear, optimizer: {optimizer}, batch_size: 32, epochs: 10}}")
    assert manifest["config"]["metrics"]["eval"]["auc"] >= 0.95


def test_mlp_with_early_stopping_on_breast_cancer(kiln, cancer_split, tmp_path):
    d, header, train, evl = cancer_split
    out, manifest = train_torch(
        kiln, d, tmp_path, "mlp",
        "{type: mlp, hidden_units: [32, 16], learning_rate: 0.01, batch_size: 32, epochs: 100}",
        "{eval_every: 12, early_stopping: {metric: log_loss, patience: 5}}")
    metrics = manifest["config"]["metrics"]["eval"]
    assert metrics["auc"] >= 0.98
    summary = manifest["config"]["model_summary"]
    assert summary["epochs"] < 100 and summary["best_step"] < summary["steps"]
    # The bundle keeps the best evaluation's weights: its log loss is the logged minimum.
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(str(out / "logs"), size_guidance={"tensors": 0})
    acc.Reload()
    losses = {e.step: float(tensor_value(e)) for e in acc.Tensors("eval/log_loss")}
    assert min(losses, key=losses.get) == summary["best_step"]
    assert metrics["log_loss"] == pytest.approx(min(losses.values()), rel=1e-6)


def tensor_value(event):
    from tensorboard.util import tensor_util
    return tensor_util.make_ndarray(event.tensor_proto).item()


def test_torch_logs_loss_and_weight_histograms(kiln, cancer_split, tmp_path):
    d, *_ = cancer_split
    out, manifest = train_torch(kiln, d, tmp_path, "m",
                                "{type: mlp, hidden_units: [8], batch_size: 100, epochs: 3}",
                                "{eval_every: 2}")
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(
        str(out / "logs"), size_guidance={"tensors": 0, "histograms": 0})
    acc.Reload()
    steps_per_epoch = -(-int(manifest["provenance"]["train_rows"]) // 100)
    steps = 3 * steps_per_epoch
    assert manifest["config"]["model_summary"]["steps"] == steps
    loss = acc.Tensors("train/loss")
    assert [e.step for e in loss] == list(range(1, steps + 1))
    values = [tensor_value(e) for e in loss]
    assert all(np.isfinite(values)) and np.mean(values[-4:]) < np.mean(values[:4])
    evals = sorted({*range(2, steps + 1, 2), *range(steps_per_epoch, steps + 1, steps_per_epoch)})
    assert [e.step for e in acc.Tensors("eval/auc")] == evals
    hist = set(acc.Tags()["histograms"])
    assert {"weights/hidden0.weight", "weights/hidden0.bias", "weights/deep_out.weight",
            "weights/deep_out.bias"} == hist
    w = acc.Histograms("weights/hidden0.weight")
    assert [e.step for e in w] == [steps_per_epoch * k for k in (1, 2, 3)]
    assert w[-1].histogram_value.num == 30 * 8  # 30 inputs x 8 units


def test_linear_regression(kiln, tmp_path):
    header, rows = load("breast_cancer.csv")
    write_csv(tmp_path / "all.csv", header[:-1], [r[:-1] for r in rows])
    (tmp_path / "r.yaml").write_text(
        "label: mean_area\ntask: regression\n"
        "model: {type: linear, optimizer: sgd, learning_rate: 0.01, batch_size: 32, epochs: 40}\n"
        "training: {eval_every: 1000}\n")
    kiln("train", "--config", tmp_path / "r.yaml", "--data", tmp_path / "all.csv",
         "--out", tmp_path / "m", "-q")
    manifest = json.load(open(tmp_path / "m" / "manifest.json"))
    assert manifest["config"]["metrics"]["eval"]["r2"] > 0.95  # area follows radius


def test_cnn_on_digits(kiln, tmp_path):
    header, rows = load("digits.csv")
    train, evl = train_test_split(rows, test_size=1 / 3, random_state=0)
    write_csv(tmp_path / "train.csv", header, train)
    write_csv(tmp_path / "eval.csv", header, evl)
    (tmp_path / "t.yaml").write_text(
        "label: digit\ntask: multiclass\n"
        "model: {type: cnn, image: {height: 8, width: 8}, conv_channels: [16, 32],\n"
        "        hidden_units: [64], batch_size: 64, epochs: 15}\n"
        # One thread: faster than two for a network this small.
        "training: {eval_every: 1000, threads: 1}\n")
    kiln("train", "--config", tmp_path / "t.yaml", "--data", tmp_path / "train.csv",
         "--eval-data", tmp_path / "eval.csv", "--out", tmp_path / "m", "-q")
    arch = json.load(open(tmp_path / "m" / "model" / "arch.json"))
    assert arch["image"] == {"height": 8, "width": 8, "channels": 1}
    kiln("predict", "--model", tmp_path / "m", tmp_path / "eval.csv",
         "--out", tmp_path / "p.jsonl", "-q")
    preds = [json.loads(line) for line in open(tmp_path / "p.jsonl")]
    assert len(preds) == len(evl)
    acc = accuracy_score([r[-1] for r in evl], [p["class"] for p in preds])
    manifest = json.load(open(tmp_path / "m" / "manifest.json"))
    assert manifest["config"]["metrics"]["eval"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert acc >= 0.95


def click_logs(path, rows=20000, seed=0):
    """Click logs whose click rate depends on the (country, device) pair and not on either
    alone: logit = 1.5 * s[country] * t[device] with balanced signs s, t = +-1, plus a
    small effect of a numeric feature. 20 x 8 = 160 pairs, more than the cross's 64 hash
    buckets, so the cross alone cannot tell every pair apart."""
    rng = np.random.default_rng(seed)
    countries = [f"c{i:02d}" for i in range(20)]
    devices = ["phone", "tablet", "desktop", "tv", "watch", "car", "console", "kiosk"]
    s = rng.permutation([1] * 10 + [-1] * 10)
    t = rng.permutation([1] * 4 + [-1] * 4)
    ci = rng.integers(0, 20, rows)
    di = rng.integers(0, 8, rows)
    age = rng.normal(40, 12, rows)
    logit = 1.5 * s[ci] * t[di] + 0.03 * (age - 40) - 0.5
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    write_csv(path, ["country", "device", "age", "click"],
              [[countries[c], devices[v], f"{a:.1f}", k]
               for c, v, a, k in zip(ci, di, age, click)])


def test_wide_deep_beats_linear_on_a_planted_interaction(kiln, tmp_path):
    click_logs(tmp_path / "clicks.csv")
    common = ("label: click\ntask: binary\n"
              "transform: {crosses: [{features: [country, device], hash_buckets: 64}]}\n"
              "training: {eval_every: 1000}\n")
    aucs = {}
    for name, model in {
        "linear": "{type: linear, learning_rate: 0.05, epochs: 8}",
        "wide_deep": "{type: wide_deep, hidden_units: [32, 16], learning_rate: 0.01, epochs: 8}",
    }.items():
        (tmp_path / f"{name}.yaml").write_text(f"model: {model}\n{common}")
        kiln("train", "--config", tmp_path / f"{name}.yaml", "--data", tmp_path / "clicks.csv",
             "--out", tmp_path / name, "-q")
        manifest = json.load(open(tmp_path / name / "manifest.json"))
        aucs[name] = manifest["config"]["metrics"]["eval"]["auc"]
    transform = json.load(open(tmp_path / "wide_deep" / "transform.json"))
    assert [o["name"] for o in transform["outputs"] if o["kind"] == "categorical"] == \
        ["country", "device", "country_x_device"]
    arch = json.load(open(tmp_path / "wide_deep" / "model" / "arch.json"))
    assert arch["cardinalities"][2] == 64  # the wide part sees the cross
    assert aucs["wide_deep"] > aucs["linear"] + 0.02, aucs

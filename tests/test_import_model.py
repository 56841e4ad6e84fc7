"""End-to-end: a model trained with xgboost-python, imported with `kiln import-model`,
predicts through kiln exactly as it does in Python."""
import csv
import json
import os

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

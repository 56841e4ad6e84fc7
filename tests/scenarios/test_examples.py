"""The credit (gbdt) and digits (cnn) examples run as written: every component runs, the
model is blessed against the example's thresholds and pushed as version 1; the credit
pipeline's second batch is evaluated against the first batch's model and pushed as 2."""
import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT


def copy_example(name, d):
    src = os.path.join(ROOT, "examples", name)
    for f in os.listdir(src):
        if f.endswith((".yaml", ".py")):
            shutil.copy(os.path.join(src, f), d / f)
    with open(d / "pipeline.yaml", "a") as f:
        f.write("metadata: sqlite:meta.sqlite\n")


def run(kiln, d, run_id):
    p = kiln("run", d / "pipeline.yaml", "--run-id", run_id, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(d / "runs" / run_id / "run.json") as f:
        return json.load(f)


def test_credit_pipeline_pushes_each_batch_evaluated_against_the_last(kiln, tmp_path):
    copy_example("credit", tmp_path)
    for span in (1, 2):
        subprocess.run([sys.executable, str(tmp_path / "generate.py"), str(tmp_path / "data"),
                        "--span", str(span)], check=True, capture_output=True)
        s = run(kiln, tmp_path, f"batch-{span}")
        assert {c["state"] for c in s["components"]} == {"ran"}
    assert sorted(os.listdir(tmp_path / "serving" / "credit")) == ["1", "2"]
    evaluation = json.loads((tmp_path / "runs/batch-2/evaluate/out/evaluation.json").read_text())
    blessing = json.loads((tmp_path / "runs/batch-2/evaluate/out/blessing.json").read_text())
    assert blessing["baseline"] == str(tmp_path / "runs/batch-1/train/out")
    assert blessing["status"] == "BLESSED"
    overall = next(s for s in evaluation["slices"] if s["slice"] == "overall")
    assert overall["candidate"]["metrics"]["auc"] > 0.75, overall


def test_digits_cnn_pipeline_is_blessed_and_pushed(kiln, tmp_path):
    # The example reads ../../tests/data/digits.csv: keep that layout.
    d = tmp_path / "examples" / "digits"
    d.mkdir(parents=True)
    (tmp_path / "tests" / "data").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "tests", "data", "digits.csv"), tmp_path / "tests/data")
    copy_example("digits", d)
    s = run(kiln, d, "first")
    assert {c["state"] for c in s["components"]} == {"ran"}
    assert os.listdir(d / "serving" / "digits") == ["1"]
    evaluation = json.loads((d / "runs/first/evaluate/out/evaluation.json").read_text())
    overall = next(s for s in evaluation["slices"] if s["slice"] == "overall")
    assert overall["candidate"]["metrics"]["accuracy"] > 0.9, overall

"""End-to-end: `kiln transform` (TFX Transform as its own step) and `kiln train --transform`.

A transform fitted by the separate step is the one `kiln train` fits itself (same rows: the
same split, rows without a label left out), so a model trained with it predicts byte for
byte what a model trained alone predicts; a config whose transform changed since is refused;
the fitted statistics agree with pandas; and bad inputs fail with exit 2 and a message
naming what is wrong."""
import csv
import json
import os

import pandas as pd
import pytest

from conftest import ROOT

SOURCE = os.path.join(ROOT, "tests", "data", "sklearn", "breast_cancer.csv")

LINEAR = """label: diagnosis
task: binary
positive_class: malignant
model: {type: linear}
training: {eval_every: 1000, checkpoint_every: 0}
transform:
  features:
    mean_radius: [{fill: mean}, zscore]
    mean_texture: [{fill: median}, zscore]
    mean_area: [log1p, {bucketize: {quantiles: 4}}]
    band: [vocabulary]
"""

GBDT = """label: diagnosis
task: binary
positive_class: malignant
model: {type: gbdt, num_rounds: 20, max_depth: 3}
training: {checkpoint_every: 0}
"""


def band(radius):
    r = float(radius)
    return "small" if r < 12 else "medium" if r < 15 else "large"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """breast_cancer plus a text column `band` (every 23rd missing), some missing
    mean_texture values (every 37th row) and some rows without a label (every 41st)."""
    d = tmp_path_factory.mktemp("transform_step")
    with open(SOURCE, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0][:-1] + ["band", "diagnosis"]
    out = []
    for i, r in enumerate(rows[1:]):
        values = dict(zip(rows[0], r))
        row = r[:-1] + ["" if i % 23 == 5 else band(values["mean_radius"]), r[-1]]
        if i % 37 == 3:
            row[header.index("mean_texture")] = ""
        if i % 41 == 7:
            row[-1] = ""
        out.append(row)
    with open(d / "cancer.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(out)
    # The same rows without the band column.
    with open(d / "no_band.csv", "w", newline="") as f:
        w = csv.writer(f)
        j = header.index("band")
        w.writerow(header[:j] + header[j + 1:])
        w.writerows(r[:j] + r[j + 1:] for r in out)
    (d / "linear.yaml").write_text(LINEAR)
    (d / "gbdt.yaml").write_text(GBDT)
    return d


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def train_both_ways(kiln, data, cfg, dataset, tmp_path):
    """kiln train alone, and kiln transform then kiln train --transform; returns the dirs."""
    kiln("transform", "--config", cfg, "--data", dataset, "--out", tmp_path / "tf")
    kiln("train", "--config", cfg, "--data", dataset, "--out", tmp_path / "alone", "-q")
    kiln("train", "--config", cfg, "--data", dataset, "--transform", tmp_path / "tf",
         "--out", tmp_path / "with", "-q")
    return tmp_path / "tf", tmp_path / "alone", tmp_path / "with"


@pytest.mark.parametrize("config", ["linear.yaml", "gbdt.yaml"])
def test_transform_then_train_predicts_what_train_alone_predicts(kiln, data, config, tmp_path):
    tf, alone, with_ = train_both_ways(kiln, data, data / config, data / "cancer.csv", tmp_path)
    # The fitted transform is the one train fits itself, and the bundle stores it as usual.
    fitted = read_bytes(alone / "transform.json")
    assert read_bytes(tf / "transform.json") == fitted
    assert read_bytes(with_ / "transform.json") == fitted
    manifest = json.load(open(alone / "manifest.json"))
    assert json.loads(fitted)["num_rows"] == int(manifest["provenance"]["train_rows"])
    assert json.load(open(with_ / "manifest.json"))["provenance"]["transform"] == str(tf)

    for name in ("alone", "with"):
        kiln("predict", "--model", tmp_path / name, data / "cancer.csv",
             "--out", tmp_path / f"{name}.csv", "-q")
    a, b = read_bytes(tmp_path / "alone.csv"), read_bytes(tmp_path / "with.csv")
    assert a.count(b"\n") == 570  # a header and every row
    assert a == b


def test_an_imported_dataset_fits_on_its_train_split(kiln, data, tmp_path):
    kiln("import", data / "cancer.csv", "--out", tmp_path / "ds", "-q")
    tf, alone, with_ = train_both_ways(kiln, data, data / "gbdt.yaml", tmp_path / "ds", tmp_path)
    ds = json.load(open(tmp_path / "ds" / "manifest.json"))
    (train_split,) = [s for s in ds["splits"] if s["name"] == "train"]
    fitted = json.load(open(tf / "transform.json"))
    # The train split's rows, less those without a label.
    assert 0 < fitted["num_rows"] < train_split["rows"]
    assert read_bytes(tf / "transform.json") == read_bytes(alone / "transform.json")
    assert read_bytes(with_ / "transform.json") == read_bytes(alone / "transform.json")
    summary = json.load(open(tf / "transform_summary.json"))
    assert summary["split"] == "train"
    assert summary["data_fingerprint"] == ds["fingerprint"]
    assert summary["rows"] == fitted["num_rows"]
    # Another split on request; one the dataset lacks is an error naming its splits.
    kiln("transform", "--config", data / "gbdt.yaml", "--data", tmp_path / "ds",
         "--split", "eval", "--out", tmp_path / "tf_eval", "-q")
    assert json.load(open(tmp_path / "tf_eval" / "transform_summary.json"))["split"] == "eval"
    p = kiln("transform", "--config", data / "gbdt.yaml", "--data", tmp_path / "ds",
             "--split", "test", "--out", tmp_path / "tf_test", check=False)
    assert p.returncode == 2
    assert "has no split 'test' (splits: " in p.stderr


def test_a_changed_spec_is_refused_naming_the_difference(kiln, data, tmp_path):
    kiln("transform", "--config", data / "linear.yaml", "--data", data / "cancer.csv",
         "--out", tmp_path / "tf", "-q")

    def train(yaml):
        cfg = tmp_path / "changed.yaml"
        cfg.write_text(yaml)
        return kiln("train", "--config", cfg, "--data", data / "cancer.csv",
                    "--transform", tmp_path / "tf", "--out", tmp_path / "m", check=False)

    p = train(LINEAR.replace("mean_radius: [{fill: mean}, zscore]",
                             "mean_radius: [{fill: median}, zscore]"))
    assert p.returncode == 2, p.stderr
    assert "feature 'mean_radius': the config says [fill: median, zscore], the fitted " \
           "transform [fill: mean, zscore]" in p.stderr
    assert "mean_texture" not in p.stderr
    assert not (tmp_path / "m").exists()

    p = train(LINEAR.replace("    band: [vocabulary]\n", ""))
    assert p.returncode == 2
    assert "feature 'band': the fitted transform's spec lists [vocabulary {top_k: 10000" \
        in p.stderr

    # Another label: the excluded column differs.
    p = train(LINEAR.replace("label: diagnosis\ntask: binary\npositive_class: malignant",
                             "label: mean_smoothness\ntask: regression"))
    assert p.returncode == 2
    assert "exclude: the config's [mean_smoothness]" in p.stderr

    # Same section, another model family: unlisted numbers get other defaults.
    kiln("transform", "--config", data / "gbdt.yaml", "--data", data / "cancer.csv",
         "--out", tmp_path / "tf_gbdt", "-q")
    cfg = tmp_path / "lin.yaml"
    cfg.write_text(GBDT.replace("{type: gbdt, num_rounds: 20, max_depth: 3}", "{type: linear}"))
    p = kiln("train", "--config", cfg, "--data", data / "cancer.csv", "--transform",
             tmp_path / "tf_gbdt", "--out", tmp_path / "m", check=False)
    assert p.returncode == 2
    assert "unlisted feature 'mean_radius' (FLOAT) was fitted with the defaults [passthrough], " \
           "but model type 'linear' gives [fill: median, zscore]" in p.stderr


def test_fitted_values_match_pandas(kiln, data, tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(GBDT + "transform:\n  features:\n"
                   "    mean_radius: [zscore]\n"
                   "    mean_area: [{fill: mean}, zscore]\n"
                   "    band: [{vocabulary: {min_frequency: 2}}]\n")
    p = kiln("transform", "--config", cfg, "--data", data / "cancer.csv", "--all-rows",
             "--out", tmp_path / "tf")
    df = pd.read_csv(data / "cancer.csv", keep_default_na=False, na_values=[""])
    labelled = df[df["diagnosis"].notna()]
    fitted = json.load(open(tmp_path / "tf" / "transform.json"))
    assert fitted["num_rows"] == len(labelled) == 555
    ops = {f["name"]: f["ops"] for f in fitted["features"]}

    (z,) = ops["mean_radius"]
    assert z["mean"] == pytest.approx(labelled["mean_radius"].mean(), rel=1e-13)
    assert z["std"] == pytest.approx(labelled["mean_radius"].std(ddof=0), rel=1e-12)

    (vocab,) = ops["band"]
    counts = labelled["band"].value_counts()
    want = sorted((k for k, n in counts.items() if n >= 2), key=lambda k: (-counts[k], k))
    assert vocab["tokens"] == want and len(want) == 3

    # The summary and the printed table carry the same statistics.
    summary = json.load(open(tmp_path / "tf" / "transform_summary.json"))
    outputs = {o["name"]: o for o in summary["outputs"]}
    assert outputs["mean_radius"]["kind"] == "dense"
    assert outputs["mean_radius"]["cardinality"] is None
    assert outputs["mean_radius"]["ops"][0]["mean"] == z["mean"]
    assert outputs["mean_radius"]["ops"][0]["std"] == z["std"]
    assert outputs["band"]["kind"] == "categorical"
    assert outputs["band"]["cardinality"] == 5  # 3 tokens, 1 oov bucket, missing
    assert outputs["band"]["ops"][0]["vocab_size"] == 3
    assert outputs["band"]["ops"][0]["top_tokens"] == want
    assert summary["split"] is None and summary["rows"] == 555
    assert summary["dropped_rows"] == 569 - 555
    assert summary["tree_defaults"] is True and summary["label"] == "diagnosis"
    assert len(summary["outputs"]) == 31  # 30 numbers and band
    assert "fitted on 555 rows (every row of" in p.stdout
    assert "14 without a usable label left out" in p.stdout
    (line,) = [ln for ln in p.stdout.splitlines() if ln.startswith("band ")]
    assert line.split()[:3] == ["band", "categorical", "5"]
    assert "vocabulary (3 tokens, 1 oov)" in line
    (line,) = [ln for ln in p.stdout.splitlines() if ln.startswith("mean_radius ")]
    assert line.split()[:3] == ["mean_radius", "dense", "-"]
    assert "zscore (mean %.6g, std %.6g)" % (z["mean"], z["std"]) in line


def test_bad_inputs_fail_with_exit_2_naming_the_problem(kiln, data, tmp_path):
    def fails(*args, says):
        p = kiln(*args, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert says in p.stderr, (says, p.stderr)
        return p

    cancer = data / "cancer.csv"
    out = tmp_path / "tf"
    fails("transform", "--data", cancer, "--out", out, says="--config is required")
    fails("transform", "--config", data / "gbdt.yaml", "--data", tmp_path / "nope.csv",
          "--out", out, says="nope.csv")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GBDT + "transform: {features: {mean_radius: [frobnicate]}}\n")
    fails("transform", "--config", bad, "--data", cancer, "--out", out, says="frobnicate")
    bad.write_text(GBDT + "transform: {features: {radius: [zscore]}}\n")
    fails("transform", "--config", bad, "--data", cancer, "--out", out,
          says="lists feature 'radius', which is not a column of the data")
    bad.write_text(GBDT.replace("label: diagnosis", "label: outcome"))
    fails("transform", "--config", bad, "--data", cancer, "--out", out,
          says="label column 'outcome' is not in")
    fails("transform", "--config", data / "gbdt.yaml", "--data", cancer, "--split", "test",
          "--out", out, says="training.split 'train:2,eval:1' has no split named 'test'")
    fails("transform", "--config", data / "gbdt.yaml", "--data", cancer, "--split", "eval",
          "--all-rows", "--out", out, says="excludes")
    assert not out.exists()

    kiln("transform", "--config", data / "linear.yaml", "--data", cancer, "--out", out, "-q")
    train = ("train", "--config", data / "linear.yaml", "--out", tmp_path / "m")
    fails(*train, "--data", cancer, "--transform", tmp_path / "missing",
          says="missing does not exist")
    (tmp_path / "empty").mkdir()
    fails(*train, "--data", cancer, "--transform", tmp_path / "empty",
          says="has no transform.json (write one with `kiln transform`)")
    fails(*train, "--data", cancer, "--transform", cancer, says="cancer.csv: ")
    fails(*train, "--data", data / "no_band.csv", "--transform", out,
          says="column 'band' is not in the data")
    assert not (tmp_path / "m").exists()
    # Its transform.json alone serves as well as the directory.
    kiln(*train, "--data", cancer, "--transform", out / "transform.json", "-q")


def test_both_steps_are_recorded_in_metadata(kiln, data, tmp_path):
    tf, _, with_ = train_both_ways(kiln, data, data / "gbdt.yaml", data / "cancer.csv", tmp_path)
    (graph,) = json.loads(kiln("meta", "ls", "artifacts", "--type", "TransformGraph",
                               "--json").stdout)
    assert graph["uri"] == str(tf)
    summary = json.load(open(tf / "transform_summary.json"))
    assert graph["properties"]["spec_sha256"] == summary["spec_sha256"]
    assert graph["custom_properties"]["rows"] == summary["rows"]

    models = json.loads(kiln("meta", "ls", "artifacts", "--type", "Model", "--json").stdout)
    (model,) = [m for m in models if m["uri"] == str(with_)]
    g = json.loads(kiln("lineage", model["id"], "--direction", "up", "--depth", "5",
                        "--format", "json").stdout)
    by_id = {a["id"]: a for a in g["artifacts"]}
    execs = {e["id"]: e for e in g["executions"]}

    def inputs_of(exec_type):
        (eid,) = [i for i, e in execs.items() if e["type"] == exec_type]
        return {ev["role"]: by_id[ev["artifact_id"]]["type"]
                for ev in g["events"] if ev["execution_id"] == eid and ev["type"] == "INPUT"}

    assert inputs_of("Trainer") == {"examples": "RawData", "transform_graph": "TransformGraph"}
    assert inputs_of("Transform") == {"examples": "RawData"}
    (transform,) = [e for e in execs.values() if e["type"] == "Transform"]
    assert transform["custom_properties"]["split"] == "train"
    assert transform["custom_properties"]["model_type"] == "gbdt"


def test_schema_types_apply_and_train_refuses_a_column_read_otherwise(kiln, data, tmp_path):
    # The schema makes mean_area text: the gbdt defaults give it a vocabulary.
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "mean_area" type: BYTES }\n')
    kiln("transform", "--config", data / "gbdt.yaml", "--data", data / "cancer.csv",
         "--schema", schema, "--out", tmp_path / "tf", "-q")
    fitted = json.load(open(tmp_path / "tf" / "transform.json"))
    (area,) = [f for f in fitted["features"] if f["name"] == "mean_area"]
    assert area["type"] == "STRING"
    assert [op["op"] for op in area["ops"]] == ["vocabulary"]
    # Train reads mean_area as a number: not what the transform was fitted on.
    p = kiln("train", "--config", data / "gbdt.yaml", "--data", data / "cancer.csv",
             "--transform", tmp_path / "tf", "--out", tmp_path / "m", check=False)
    assert p.returncode == 2
    assert "column 'mean_area' is FLOAT in the data but was STRING when the transform was " \
           "fitted" in p.stderr
    g = json.loads(kiln("meta", "ls", "executions", "--type", "Transform", "--json").stdout)
    assert len(g) == 1
    graph = json.loads(kiln("meta", "ls", "artifacts", "--type", "Schema", "--json").stdout)
    assert [a["uri"] for a in graph] == [str(schema)]

"""End-to-end: `kiln run PIPELINE.yaml` runs import -> stats -> schema -> validate -> train
(gbdt) and a `command:` component (a Python script under the KILN_* environment contract)
as child processes; re-runs reuse cached results; a changed train arg re-runs train and
what reads it only; retryable failures are retried; kill -9 mid-run then a re-run finishes
the pipeline reusing what had finished; ERROR anomalies stop the run before training;
cycles are errors; every component is recorded in the pipeline's and run's contexts."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANCER = os.path.join(ROOT, "tests", "data", "sklearn", "breast_cancer.csv")

TRAIN_YAML = ("label: diagnosis\ntask: binary\npositive_class: malignant\n"
              "model: {{type: gbdt, num_rounds: {rounds}}}\ntraining: {{checkpoint_every: 0}}\n")

# Reads the model a component was given and writes a report about it: the command contract.
REPORT_PY = """\
import json, os, sys
model = os.environ["KILN_INPUT_MODEL"]
out = os.environ["KILN_OUTPUT_REPORT"]
assert os.path.isdir(out) and not os.listdir(out), out
with open(os.path.join(model, "manifest.json")) as f:
    manifest = json.load(f)
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump({"model": model, "run": os.environ["KILN_RUN_ID"],
               "component": os.environ["KILN_COMPONENT"], "pipeline": os.environ["KILN_PIPELINE"],
               "attempt": int(os.environ["KILN_ATTEMPT"]), "files": len(manifest["files"])}, f)
print("report of", model)
"""

PIPELINE = """\
pipeline: cancer
root: runs
metadata: sqlite:meta.sqlite
components:
  - name: import
    kind: import
    args: {{data: data/cancer.csv, splits: "train:4,eval:1"}}
  - name: stats
    kind: stats
    inputs: {{data: import.out}}
  - name: schema
    kind: schema
    inputs: {{stats: stats}}
    args: {{split: train}}
  - name: validate
    kind: validate
    inputs: {{schema: schema.out}}
    args: {{data: {validate_data}}}
  - name: train
    kind: train
    inputs: {{data: import.out}}
    args: {{config: {train_config}}}
    after: [validate]
  - name: report
    kind: command
    command: [{python}, report.py]
    inputs: {{model: train.out}}
    outputs: {{report: Report}}
    retries: 2
    retry_backoff_seconds: 0.05
"""

COMPONENTS = ["import", "stats", "schema", "validate", "train", "report"]


def setup(d, validate_data="data/cancer.csv", train_config="train.yaml", report=REPORT_PY):
    (d / "data").mkdir(exist_ok=True)
    shutil.copy(CANCER, d / "data" / "cancer.csv")
    (d / "train.yaml").write_text(TRAIN_YAML.format(rounds=4))
    (d / "train6.yaml").write_text(TRAIN_YAML.format(rounds=6))
    (d / "report.py").write_text(report)
    (d / "pipeline.yaml").write_text(PIPELINE.format(
        validate_data=validate_data, train_config=train_config, python=sys.executable))
    return d / "pipeline.yaml"


def run(kiln, pipeline, *args, code=0):
    p = kiln("run", pipeline, *args, check=False)
    assert p.returncode == code, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def summary(d, run_id):
    with open(d / "runs" / run_id / "run.json") as f:
        return json.load(f)


def states(s):
    return {c["name"]: c["state"] for c in s["components"]}


def test_run_cache_and_rerun_of_what_changed(kiln, tmp_path):
    pipeline = setup(tmp_path)
    p = run(kiln, pipeline, "--run-id", "r1")
    assert p.stdout.startswith("pipeline cancer, run r1: succeeded in ")
    table = p.stdout.splitlines()
    assert table[1].split() == ["component", "kind", "state", "seconds", "attempts", "note"]
    assert [line.split()[:3] for line in table[2:8]] == [
        ["import", "import", "ran"], ["stats", "stats", "ran"], ["schema", "schema", "ran"],
        ["validate", "validate", "ran"], ["train", "train", "ran"], ["report", "command", "ran"]]
    s = summary(tmp_path, "r1")
    assert s["state"] == "succeeded" and states(s) == {c: "ran" for c in COMPONENTS}
    r1 = tmp_path / "runs" / "r1"
    # Outputs in place, staging gone, logs kept.
    assert (r1 / "import" / "out" / "manifest.json").exists()
    assert (r1 / "schema" / "out" / "schema.pbtxt").exists()
    assert (r1 / "validate" / "out" / "anomalies.pbtxt").exists()
    assert (r1 / "train" / "out" / "manifest.json").exists()
    assert not any((r1 / c / ".staging").exists() for c in COMPONENTS)
    assert "No anomalies found." in (r1 / "validate" / "log.txt").read_text()
    by_name = {c["name"]: c for c in s["components"]}
    assert by_name["schema"]["outputs"] == {"out": str(r1 / "schema" / "out" / "schema.pbtxt")}
    report = json.loads((r1 / "report" / "report" / "report.json").read_text())
    assert report == {"model": str(r1 / "train" / "out"), "run": "r1", "component": "report",
                      "pipeline": "cancer", "attempt": 1, "files": report["files"]}
    assert report["files"] > 0
    assert f"report of {r1 / 'train' / 'out'}" in (r1 / "report" / "log.txt").read_text()

    # Unchanged: nothing runs, and quickly.
    t0 = time.monotonic()
    run(kiln, pipeline, "--run-id", "r2")
    took = time.monotonic() - t0
    s2 = summary(tmp_path, "r2")
    assert states(s2) == {c: "cached" for c in COMPONENTS}
    assert took < 3, f"cached re-run took {took:.2f} s"
    assert sorted(os.listdir(tmp_path / "runs" / "r2")) == ["run.json"]  # nothing written
    assert {c["name"]: c["outputs"] for c in s2["components"]} == \
        {c["name"]: c["outputs"] for c in s["components"]}

    # A different train config: train and the report on its model run again, nothing else.
    setup(tmp_path, train_config="train6.yaml")
    run(kiln, pipeline, "--run-id", "r3")
    s3 = summary(tmp_path, "r3")
    assert states(s3) == {"import": "cached", "stats": "cached", "schema": "cached",
                          "validate": "cached", "train": "ran", "report": "ran"}
    recipe = (tmp_path / "runs" / "r3" / "train" / "cache_key.txt").read_text().splitlines()
    assert recipe[0] == {c["name"]: c for c in s3["components"]}["train"]["cache_key"]
    assert [line for line in recipe if line.startswith('arg "config"')][0].startswith(
        'arg "config" = "train6.yaml" content ')
    report3 = json.loads(
        (tmp_path / "runs" / "r3" / "report" / "report" / "report.json").read_text())
    assert report3["model"] == str(tmp_path / "runs" / "r3" / "train" / "out")
    # ... and editing the file a train arg names counts the same as changing the arg.
    (tmp_path / "train6.yaml").write_text(TRAIN_YAML.format(rounds=7))
    run(kiln, pipeline, "--run-id", "r4")
    assert states(summary(tmp_path, "r4"))["train"] == "ran"

    # --no-cache runs everything again.
    run(kiln, pipeline, "--run-id", "r5", "--no-cache", "-q")
    assert states(summary(tmp_path, "r5")) == {c: "ran" for c in COMPONENTS}


def test_every_component_recorded_in_pipeline_and_run_contexts(kiln, tmp_path):
    pipeline = setup(tmp_path)
    run(kiln, pipeline, "--run-id", "m1", "-q")
    run(kiln, pipeline, "--run-id", "m2", "-q")
    meta = ["--metadata", f"sqlite:{tmp_path / 'meta.sqlite'}"]
    contexts = json.loads(kiln("meta", "ls", "contexts", "--json", *meta).stdout)
    ids = {(c["type"], c["name"]): c["id"] for c in contexts}
    assert ("pipeline", "cancer") in ids
    assert {n for t, n in ids if t == "component"} == {f"cancer.{c}" for c in COMPONENTS}
    s1 = summary(tmp_path, "m1")
    assert s1["run_context_id"] == ids[("pipeline_run", "m1")]
    assert s1["pipeline_context_id"] == ids[("pipeline", "cancer")]

    def executions(context):
        return json.loads(kiln("meta", "ls", "executions", "--context", str(context), "--json",
                               *meta).stdout)

    first = executions(ids[("pipeline_run", "m1")])
    # kiln's own commands recorded themselves (with their parameters); the runner added
    # the component, the cache key and the contexts, and recorded the command component.
    assert [(e["type"], e["state"], e["custom_properties"]["component"]) for e in first] == [
        ("Import", "COMPLETE", "import"), ("StatisticsGen", "COMPLETE", "stats"),
        ("SchemaGen", "COMPLETE", "schema"), ("ExampleValidator", "COMPLETE", "validate"),
        ("Trainer", "COMPLETE", "train"), ("Command", "COMPLETE", "report")]
    train = first[4]["custom_properties"]
    assert train["model.num_rounds"] == 4 and train["model_type"] == "gbdt"
    assert len(train["cache_key"]) == 64
    assert train["output.out"] == str(tmp_path / "runs" / "m1" / "train" / "out")
    second = executions(ids[("pipeline_run", "m2")])
    assert [(e["type"], e["state"]) for e in second] == [
        (e["type"], "CACHED") for e in first]
    assert [e["custom_properties"]["cached_from"] for e in second] == [e["id"] for e in first]
    assert len(executions(ids[("pipeline", "cancer")])) == 12

    # Lineage runs through the final paths, not the staging ones: the model came from the
    # imported dataset, whose record now sits at its final place.
    models = json.loads(kiln("meta", "ls", "artifacts", "--type", "Model", "--json", *meta).stdout)
    assert [m["uri"] for m in models] == [str(tmp_path / "runs" / "m1" / "train" / "out")]
    lineage = kiln("lineage", str(models[0]["id"]), *meta).stdout
    assert str(tmp_path / "runs" / "m1" / "import" / "out") in lineage
    assert ".staging" not in lineage


def test_retryable_failure_is_retried(kiln, tmp_path):
    flaky = REPORT_PY + "if os.environ['KILN_ATTEMPT'] == '1':\n    sys.exit(75)\n"
    pipeline = setup(tmp_path, report=flaky)
    run(kiln, pipeline, "--run-id", "f1", "-q")
    s = summary(tmp_path, "f1")
    by_name = {c["name"]: c for c in s["components"]}
    assert by_name["report"]["state"] == "ran" and by_name["report"]["attempts"] == 2
    log = (tmp_path / "runs" / "f1" / "report" / "log.txt").read_text()
    assert "=== kiln run: exit 75 after" in log and "attempt 2/3" in log
    report = json.loads((tmp_path / "runs" / "f1" / "report" / "report" / "report.json").read_text())
    assert report["attempt"] == 2  # a fresh, empty output directory for the second attempt


def test_kill_9_mid_run_then_rerun_resumes(kiln, kiln_bin, tmp_path):
    # The report blocks (while a marker exists) after writing its pid: kill -9 the runner
    # then, while train and everything before it have finished.
    blocking = ("import os, time, pathlib\n"
                "pathlib.Path('report.pid').write_text(str(os.getpid()))\n"
                "while pathlib.Path('block').exists():\n    time.sleep(0.05)\n") + REPORT_PY
    pipeline = setup(tmp_path, report=blocking)
    (tmp_path / "block").write_text("")
    p = subprocess.Popen([kiln_bin, "run", pipeline, "--run-id", "k1", "-q"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (tmp_path / "report.pid").exists():
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline, "the report component never started"
        time.sleep(0.05)
    child = int((tmp_path / "report.pid").read_text())
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    # The component died with the runner (it is not left running, or writing).
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{child}") and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}")
    killed = summary(tmp_path, "k1")
    assert killed["state"] == "running"
    assert states(killed)["train"] == "ran" and states(killed)["report"] == "running"
    assert not (tmp_path / "runs" / "k1" / "report" / "report").exists()  # nothing published

    (tmp_path / "block").unlink()
    run(kiln, pipeline, "--run-id", "k2", "-q")
    s = summary(tmp_path, "k2")
    assert states(s) == {"import": "cached", "stats": "cached", "schema": "cached",
                         "validate": "cached", "train": "cached", "report": "ran"}
    assert (tmp_path / "runs" / "k2" / "report" / "report" / "report.json").exists()


def test_error_anomalies_stop_the_run_before_training(kiln, tmp_path):
    pipeline = setup(tmp_path, validate_data="data/bad.csv")
    # A day's data missing a column the schema requires.
    lines = (tmp_path / "data" / "cancer.csv").read_text().splitlines()
    (tmp_path / "data" / "bad.csv").write_text(
        "\n".join(",".join(line.split(",")[1:]) for line in lines) + "\n")
    p = run(kiln, pipeline, "--run-id", "g1", code=3)
    assert p.stderr == ("kiln run: stopped at component 'validate': found ERROR anomalies "
                        "(exit 3): the run stops here\n")
    s = summary(tmp_path, "g1")
    assert s["state"] == "stopped" and s["stopped_by"] == "validate"
    assert states(s) == {"import": "ran", "stats": "ran", "schema": "ran", "validate": "ran",
                         "train": "skipped", "report": "skipped"}
    by_name = {c["name"]: c for c in s["components"]}
    assert by_name["validate"]["exit_code"] == 3 and by_name["validate"]["findings"] is True
    assert by_name["train"]["note"] == "the run stopped at validate"
    assert not (tmp_path / "runs" / "g1" / "train").exists()
    assert "SCHEMA_MISSING_COLUMN" in (tmp_path / "runs" / "g1" / "validate" / "log.txt").read_text()
    # The same data stops the next run too, from the cache.
    run(kiln, pipeline, "--run-id", "g2", "-q", code=3)
    assert states(summary(tmp_path, "g2"))["validate"] == "cached"
    # on_findings: continue lets the run go on.
    text = pipeline.read_text().replace("    args: {data: data/bad.csv}\n",
                                        "    args: {data: data/bad.csv}\n    on_findings: continue\n")
    pipeline.write_text(text)
    run(kiln, pipeline, "--run-id", "g3", "-q")
    assert states(summary(tmp_path, "g3"))["train"] == "ran"


def test_pipeline_file_errors_are_usage_errors(kiln, tmp_path):
    (tmp_path / "cycle.yaml").write_text("""\
pipeline: loop
components:
  - {name: a, kind: command, command: [/bin/true], outputs: [o], inputs: {x: b.o}}
  - {name: b, kind: command, command: [/bin/true], outputs: [o], inputs: {x: a.o}}
""")
    p = run(kiln, tmp_path / "cycle.yaml", code=2)
    assert p.stderr == (f"kiln run: error: {tmp_path / 'cycle.yaml'}:3: components form a cycle: "
                        "a -> b -> a\n")
    assert not (tmp_path / "runs").exists()

    # Args are checked against the real flags of the kiln command.
    (tmp_path / "flags.yaml").write_text("""\
pipeline: flags
components:
  - name: train
    kind: train
    args: {data: x.csv, config: t.yaml, rounds: 5}
""")
    p = run(kiln, tmp_path / "flags.yaml", code=2)
    assert f"{tmp_path / 'flags.yaml'}:5: component 'train': kiln train has no --rounds; args: " \
        in p.stderr
    assert "eval_data" in p.stderr

    p = run(kiln, tmp_path / "missing.yaml", code=2)
    assert "cannot read pipeline" in p.stderr


def test_dry_run_prints_each_command(kiln, tmp_path):
    pipeline = setup(tmp_path)
    p = run(kiln, pipeline, "--dry-run")
    lines = p.stdout.splitlines()
    assert lines[0] == (f"pipeline cancer: 6 components in 6 parallel groups; runs in "
                        f"{tmp_path / 'runs'}/RUN_ID")
    run_dir = tmp_path / "runs" / "RUN_ID"
    assert lines[7] == "[3] validate (validate) after schema"
    assert lines[8].split() == [
        "kiln", "validate", "data/cancer.csv",
        f"--schema={run_dir / 'schema' / 'out' / 'schema.pbtxt'}",
        f"--out={run_dir / 'validate' / '.staging' / 'out'}",
        f"--metadata=sqlite:{tmp_path / 'meta.sqlite'}"]
    assert not (tmp_path / "runs").exists()


def test_help_example_is_a_valid_pipeline(kiln, tmp_path):
    """The complete example in `kiln run --help` parses and plans as documented."""
    help_text = kiln("run", "--help").stdout.splitlines()
    start = help_text.index("Example (pipeline.yaml):") + 1
    end = start + next(i for i, line in enumerate(help_text[start:]) if not line.strip())
    (tmp_path / "example.yaml").write_text("\n".join(line[2:] for line in help_text[start:end]))
    p = run(kiln, tmp_path / "example.yaml", "--dry-run")
    assert p.stdout.splitlines()[0] == (f"pipeline clicks: 8 components in 7 parallel groups; "
                                        f"runs in {tmp_path / 'runs' / 'clicks'}/RUN_ID")
    assert "[6] push (push) after train, evaluate" in p.stdout


def test_alerts_reach_a_webhook_and_a_log_and_a_dead_sink_changes_nothing(kiln, tmp_path):
    import http.server
    import socket
    import threading

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    try:
        pipeline = setup(tmp_path, validate_data="data/bad.csv")
        lines = (tmp_path / "data" / "cancer.csv").read_text().splitlines()
        (tmp_path / "data" / "bad.csv").write_text(
            "\n".join(",".join(line.split(",")[1:]) for line in lines) + "\n")
        pipeline.write_text(pipeline.read_text() + (
            "alerts:\n"
            f"  - {{webhook: http://127.0.0.1:{server.server_port}/hook}}\n"
            "  - {log: alerts.jsonl}\n"
            f"  - {{webhook: http://127.0.0.1:{dead}/x, retries: 2, backoff_seconds: 0.05}}\n"))
        p = run(kiln, pipeline, "--run-id", "a1", code=3)  # the dead sink does not change it
        assert [path for path, _ in received] == ["/hook"]
        doc = received[0][1]
        assert doc["event"] == "anomalies" and doc["pipeline"] == "cancer" and doc["run"] == "a1"
        assert doc["component"] == "validate"
        assert doc["text"].startswith("kiln: pipeline cancer, run a1: validate found ERROR "
                                      "anomalies in the data; the run stopped before training")
        logged = [json.loads(l) for l in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        assert logged == [doc]
        assert f"alert anomalies not delivered to http://127.0.0.1:{dead}/x" in p.stderr

        # A failing component: run_failed, naming it.
        (tmp_path / "data" / "bad.csv").unlink()
        received.clear()
        run(kiln, pipeline, "--run-id", "a2", code=1)
        assert [d["event"] for _, d in received] == ["run_failed"]
        assert received[0][1]["details"]["failed_components"][0].startswith("validate: ")
    finally:
        server.shutdown()


def test_alert_sink_errors_name_the_line(kiln, tmp_path):
    pipeline = setup(tmp_path)
    base = pipeline.read_text()
    for sink, message in (("{webhook: https://x/y}", "webhook is an http:// URL"),
                          ("{log: a.jsonl, webhook: http://x/}", "exactly one of webhook and log"),
                          ("{log: a.jsonl, retry: 3}", "unknown key 'retry'")):
        pipeline.write_text(base + f"alerts:\n  - {sink}\n")
        p = run(kiln, pipeline, code=2)
        assert f"pipeline.yaml:{len(base.splitlines()) + 2}: " in p.stderr, p.stderr
        assert message in p.stderr, p.stderr

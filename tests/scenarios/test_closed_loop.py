"""Scenarios of the closed loop on the recsys example (examples/recsys), run as a user
would: each day's click logs come from the example's generator, `kiln run` runs the
example's own pipeline.yaml, `kiln serve` serves what was pushed.

  normal day     blessed, pushed, and the server answers with the new version
  bad day        stopped before training, an alert reaches a webhook, serving unchanged
  drift day      trained and evaluated, the push held until `kiln approve`
  worse model    NOT_BLESSED, not pushed, the failing slice named
  kill -9        a second `kiln run` resumes from the cache and pushes exactly once
  meta diff      between two pushed models: the changed span and parameters
  re-run         an unchanged pipeline executes nothing
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT
from test_serve import Server, call

EXAMPLE = os.path.join(ROOT, "examples", "recsys")
ROWS = 4000  # per day: enough for the example's thresholds, small enough for seconds


class Workspace:
    """A copy of the example with its own metadata store; days are generated into it."""

    def __init__(self, kiln, kiln_bin, d, extra_yaml=""):
        self.kiln, self.kiln_bin, self.d = kiln, kiln_bin, d
        for name in ("pipeline.yaml", "train.yaml", "eval.yaml", "generate.py"):
            shutil.copy(os.path.join(EXAMPLE, name), d / name)
        with open(d / "pipeline.yaml", "a") as f:
            f.write("metadata: sqlite:meta.sqlite\n" + extra_yaml)
        self.store = f"sqlite:{d / 'meta.sqlite'}"

    def day(self, n, **kw):
        args = [sys.executable, str(self.d / "generate.py"), str(self.d / "data"), "--day", str(n),
                "--rows", str(ROWS)]
        for k, v in kw.items():
            args += [f"--{k}", str(v)]
        subprocess.run(args, check=True, capture_output=True)

    def run(self, run_id, code=0, *args):
        p = self.kiln("run", self.d / "pipeline.yaml", "--run-id", run_id, *args, check=False)
        assert p.returncode == code, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p, self.summary(run_id)

    def summary(self, run_id):
        with open(self.d / "runs" / run_id / "run.json") as f:
            return json.load(f)

    def versions(self):
        base = self.d / "serving" / "recsys"
        return sorted(int(v) for v in os.listdir(base)) if base.exists() else []


def states(summary):
    return {c["name"]: c["state"] for c in summary["components"]}


def component(summary, name):
    return next(c for c in summary["components"] if c["name"] == name)


class Hooks:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self):
        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        return [b["event"] for b in self.bodies]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    h = Hooks()
    yield h
    h.close()


@pytest.fixture
def ws(kiln, kiln_bin, tmp_path, hooks):
    return Workspace(kiln, kiln_bin, tmp_path,
                     extra_yaml=f"alerts:\n  - {{webhook: \"{hooks.url}\", backoff_seconds: 0.1}}\n")


def test_normal_day_is_blessed_pushed_and_served(ws, hooks):
    ws.day(1)
    _, s = ws.run("day-1")
    assert s["state"] == "succeeded"
    assert set(states(s).values()) == {"ran"}
    blessing = json.loads((ws.d / "runs/day-1/evaluate/out/blessing.json").read_text())
    assert blessing["status"] == "BLESSED" and blessing["blessed"] is True
    assert ws.versions() == [1]
    assert "pushed" in hooks.events()
    # The first run wrote the curated schema; the evaluation had no baseline.
    assert (ws.d / "schema" / "schema.pbtxt").exists()
    assert "baseline: none blessed yet" in (ws.d / "runs/day-1/evaluate/log.txt").read_text()

    server = Server(ws.kiln_bin, "--model_name", "recsys", "--model_base_path",
                    ws.d / "serving" / "recsys", "--file_system_poll_wait_seconds", "0.1")
    try:
        assert call(server.port, "/v1/models/recsys")[1]["model_version_status"][0]["version"] == "1"
        row = {"user_id": "u1", "user_type": "new", "item_id": "item-0007", "category": "toys",
               "price": 12.5, "hour": 12, "device": "mobile"}
        code, out = call(server.port, "/v1/models/recsys:predict", {"instances": [row]})
        assert code == 200 and 0 < out["predictions"][0]["scores"] < 1, out

        # The next normal day is pushed as version 2 and the server takes it over.
        ws.day(4)
        _, s = ws.run("day-4")
        assert s["state"] == "succeeded" and ws.versions() == [1, 2]
        evaluate_log = (ws.d / "runs/day-4/evaluate/log.txt").read_text()
        assert f"--baseline={ws.d / 'runs/day-1/train/out'}" in evaluate_log
        deadline = time.time() + 20
        while time.time() < deadline:
            status = call(server.port, "/v1/models/recsys")[1]["model_version_status"]
            if [v["version"] for v in status if v["state"] == "AVAILABLE"] == ["2"]:
                break
            time.sleep(0.1)
        assert [v["version"] for v in status if v["state"] == "AVAILABLE"] == ["2"], status
        code, out2 = call(server.port, "/v1/models/recsys/versions/2:predict",
                          {"instances": [row]})
        assert code == 200 and out2["predictions"][0]["scores"] != out["predictions"][0]["scores"]
    finally:
        assert server.stop() == 0


def test_bad_day_stops_before_training_alerts_and_leaves_serving_alone(ws, hooks):
    ws.day(1)
    ws.run("day-1")
    before = sorted(os.listdir(ws.d / "serving" / "recsys" / "1"))
    hooks.bodies.clear()
    ws.day(3)  # device column gone, purchase_quantity -1
    p, s = ws.run("day-3", 3)
    assert s["state"] == "stopped" and s["stopped_by"] == "validate"
    assert states(s) == {"import": "ran", "stats": "ran", "schema": "ran", "validate": "ran",
                         "transform": "skipped", "train": "skipped", "evaluate": "skipped",
                         "infra_validate": "skipped", "push": "skipped"}
    assert not (ws.d / "runs" / "day-3" / "train" / "out").exists()
    assert ws.versions() == [1] and sorted(os.listdir(ws.d / "serving/recsys/1")) == before
    anomalies = json.loads((ws.d / "runs/day-3/validate/out/anomalies.json").read_text())
    reasons = {f: [r["type"] for r in a["reason"]] for f, a in anomalies["anomaly_info"].items()}
    assert "SCHEMA_MISSING_COLUMN" in reasons["device"]
    assert "INT_TYPE_SMALL_INT" in reasons["purchase_quantity"]
    assert hooks.events() == ["anomalies"]
    alert = hooks.bodies[0]
    assert alert["component"] == "validate" and alert["run"] == "day-3"
    assert "ERROR anomalies" in alert["text"] and "stopped before training" in alert["text"]
    assert "stopped at component 'validate'" in p.stderr


def test_drift_day_trains_evaluates_and_holds_the_push_until_approved(ws, hooks):
    ws.day(1)
    ws.run("day-1")
    hooks.bodies.clear()
    ws.day(2)  # the promo day
    p, s = ws.run("day-2", 3)
    assert s["state"] == "held" and s["held_by"] == "validate"
    assert states(s) == {"import": "ran", "stats": "ran", "schema": "ran", "validate": "ran",
                         "transform": "ran", "train": "ran", "evaluate": "ran",
                         "infra_validate": "ran", "push": "held"}
    drift = component(s, "validate")["drift"]
    assert {"user_type", "device"} <= set(drift), drift
    # Compared with day 1's statistics, found in the metadata store.
    assert f"--previous={ws.d / 'runs/day-1/stats/out'}" in (
        ws.d / "runs/day-2/validate/log.txt").read_text()
    assert json.loads((ws.d / "runs/day-2/evaluate/out/blessing.json").read_text())["blessed"]
    assert ws.versions() == [1]
    assert f"kiln approve day-2 --pipeline {ws.d / 'pipeline.yaml'}" in component(s, "push")["note"]
    assert hooks.events() == ["drift", "held"]

    # Approving anything but a held run is refused.
    p = ws.kiln("approve", "day-1", "--pipeline", ws.d / "pipeline.yaml", check=False)
    assert p.returncode == 2 and "run day-1 is succeeded" in p.stderr

    p = ws.kiln("approve", "day-2", "--pipeline", ws.d / "pipeline.yaml", "--note", "promo",
                check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    s = ws.summary("day-2")
    assert s["state"] == "succeeded" and s["approved"] is True
    assert states(s) == {**{c: "cached" for c in ("import", "stats", "schema", "validate",
                                                   "transform", "train", "evaluate",
                                                   "infra_validate")},
                         "push": "ran"}
    assert ws.versions() == [1, 2]
    # The approval is on record, in the run's context.
    run_ctx = s["run_context_id"]
    ls = ws.kiln("meta", "ls", "executions", "--context", run_ctx, "--json", "--metadata", ws.store)
    approvals = [e for e in json.loads(ls.stdout) if e["type"] == "Approval"]
    assert len(approvals) == 1
    props = ws.kiln("meta", "show", f"e{approvals[0]['id']}", "--json", "--metadata", ws.store)
    assert '"promo"' in props.stdout and '"user"' in props.stdout


def test_a_worse_model_is_not_blessed_and_not_pushed(ws, hooks):
    ws.day(1)
    ws.run("day-1")
    hooks.bodies.clear()
    # A model that cannot see who the user is: worse for new users in particular.
    train = (ws.d / "train.yaml").read_text().splitlines(keepends=True)
    (ws.d / "train.yaml").write_text("".join(
        line for line in train if "user_type" not in line and not line.startswith("  crosses:")))
    ws.day(4)
    _, s = ws.run("day-4", 3)
    assert s["state"] == "stopped" and s["stopped_by"] == "evaluate"
    assert states(s)["push"] == "skipped" and ws.versions() == [1]
    blessing = json.loads((ws.d / "runs/day-4/evaluate/out/blessing.json").read_text())
    assert blessing["status"] == "NOT_BLESSED"
    failing = {c["slice"] for c in blessing["failing_checks"]}
    assert "user_type=new" in failing, blessing
    assert hooks.events() == ["not_blessed"]


def test_kill_9_mid_run_then_rerun_resumes_and_pushes_once(ws):
    ws.day(1)
    ws.run("day-1")
    ws.day(4)
    args = [ws.kiln_bin, "run", str(ws.d / "pipeline.yaml"), "--run-id", "day-4"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    train_log = ws.d / "runs" / "day-4" / "train" / "log.txt"
    deadline = time.time() + 60
    while not train_log.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert train_log.exists(), "train never started"
    proc.kill()  # SIGKILL to kiln run; its components die with it (PR_SET_PDEATHSIG)
    proc.wait()
    assert ws.versions() == [1]
    _, s = ws.run("day-4")
    st = states(s)
    assert s["state"] == "succeeded"
    assert {st[c] for c in ("import", "stats", "schema", "validate")} == {"cached"}
    assert st["train"] == st["push"] == "ran"
    assert ws.versions() == [1, 2]
    _, s = ws.run("day-4-again")
    assert set(states(s).values()) == {"cached"} and ws.versions() == [1, 2]
    pushes = ws.kiln("meta", "ls", "executions", "--type", "Pusher", "--json", "--metadata",
                     ws.store)
    assert [e["state"] for e in json.loads(pushes.stdout)].count("COMPLETE") == 2  # day 1, day 4


def test_meta_diff_names_the_changed_span_and_parameters(ws):
    ws.day(1)
    ws.run("day-1")
    ws.day(4)
    (ws.d / "train.yaml").write_text(
        (ws.d / "train.yaml").read_text().replace("learning_rate: 0.01", "learning_rate: 0.02"))
    ws.run("day-4")
    models = json.loads(ws.kiln("meta", "ls", "artifacts", "--type", "Model", "--json",
                                "--metadata", ws.store).stdout)
    assert [m["uri"] for m in models] == [str(ws.d / "runs/day-1/train/out"),
                                          str(ws.d / "runs/day-4/train/out")]
    diff = ws.kiln("meta", "diff", models[0]["id"], models[1]["id"], "--metadata", ws.store,
                   check=False).stdout
    lines = [line.strip() for line in diff.splitlines()]
    assert "examples.span: 1 -> 4" in lines, diff
    assert "model.learning_rate: 0.01 -> 0.02" in lines, diff


def test_rerunning_an_unchanged_pipeline_executes_nothing(ws):
    ws.day(1)
    ws.run("first")
    p, s = ws.run("again")
    assert set(states(s).values()) == {"cached"}
    assert all(c["attempts"] == 0 for c in s["components"])
    assert ws.versions() == [1]
    assert not any((ws.d / "runs" / "again" / c).exists() for c in states(s))
    # run.json carries the DAG; the run's context says how it ended, for a dashboard.
    assert component(s, "validate")["upstream"] == ["stats", "schema"]  # file order
    assert component(s, "push")["upstream"] == ["train", "evaluate", "infra_validate"]
    ctx = json.loads(ws.kiln("meta", "show", f"c{s['run_context_id']}", "--json", "--metadata",
                             ws.store).stdout)["context"]["custom_properties"]
    assert ctx["pipeline"] == "recsys" and ctx["state"] == "succeeded"
    assert ctx["run_dir"] == str(ws.d / "runs" / "again") and ctx["started_ms"] > 0


def test_the_curated_schema_is_used_as_edited_and_versioned(ws):
    ws.day(1)
    ws.run("first")
    curated = ws.d / "schema" / "schema.pbtxt"
    assert "version" not in (ws.d / "runs/first/schema/log.txt").read_text()  # inferred
    # A person edits the schema: the next run uses their file, as a new version.
    curated.write_text("# reviewed: device may grow new values\n" + curated.read_text())
    _, s = ws.run("edited")
    st = states(s)
    assert st["schema"] == st["validate"] == "ran"
    assert st["train"] == "cached"  # training does not read the schema
    log = (ws.d / "runs/edited/schema/log.txt").read_text()
    assert f"using the curated schema {curated} (version 2)" in log
    assert (ws.d / "runs/edited/schema/out/schema.pbtxt").read_text() == curated.read_text()
    schemas = json.loads(ws.kiln("meta", "ls", "artifacts", "--type", "Schema", "--json",
                                 "--metadata", ws.store).stdout)
    versions = []
    for a in schemas:
        shown = json.loads(ws.kiln("meta", "show", f"a{a['id']}", "--json", "--metadata",
                                   ws.store).stdout)
        versions.append(shown["artifact"]["custom_properties"]["schema_version"])
    assert versions == [1, 2]


def test_a_validate_after_the_push_is_not_a_gate_of_it(kiln, kiln_bin, tmp_path):
    # A check that runs after the push (here: the eval split against the schema) must not
    # hold the push back waiting for it, which would wait forever.
    ws = Workspace(kiln, kiln_bin, tmp_path)
    with open(tmp_path / "pipeline.yaml") as f:
        text = f.read()
    text = text.replace("metadata: sqlite:meta.sqlite\n", "") + (
        "  - name: after_push\n    kind: validate\n"
        "    inputs: {data: stats.out, schema: schema.out}\n"
        "    args: {split: eval}\n    after: [push]\n"
        "metadata: sqlite:meta.sqlite\n")
    (tmp_path / "pipeline.yaml").write_text(text)
    ws.day(1)
    p = kiln("run", tmp_path / "pipeline.yaml", "--run-id", "r", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    s = ws.summary("r")
    assert states(s)["push"] == "ran" and states(s)["after_push"] == "ran"
    assert component(s, "after_push")["upstream"] == ["stats", "schema", "push"]

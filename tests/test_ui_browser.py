"""kiln ui in a real browser: the recsys example's runs recorded into a store, `kiln ui`
serving the built web app over it, and headless Chromium (Debian's, driven by
playwright-core from web/node_modules) opening every view. What the page shows is compared
with values read here from the artifacts themselves (statistics.json, evaluation.json,
anomalies.json, run.json, the TensorBoard event files, the metadata store through
`kiln meta`), never from the API under test.

web/tests/browser.mjs does the clicking: Runs -> (Tab, Enter) a run -> its DAG and a
component's log (Enter on a DAG node) -> the run's model in Models -> its lineage -> Data
-> Training, then watches a run that starts while the page is open. Screenshots of each
view go to ${KILN_BINARY_DIR}/ui-screenshots/.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from conftest import ROOT
from test_serve import Server, call

EXAMPLE = os.path.join(ROOT, "examples", "recsys")
ROWS = 2000
CHROMIUM = "/usr/bin/chromium"
BINARY_DIR = os.environ.get("KILN_BINARY_DIR")


def web_dir(kiln_bin):
    # The app is built beside the binary (web/CMakeLists.txt); `kiln ui` serves it from there.
    base = BINARY_DIR or os.path.dirname(os.path.realpath(kiln_bin))
    return os.path.join(base, "web")


def load(path):
    with open(path) as f:
        return json.load(f)


def artifact_ids(kiln, store, type_name):
    p = kiln("meta", "ls", "artifacts", "--type", type_name, "--json", "--metadata", store)
    return {a["uri"].rstrip("/"): a["id"] for a in json.loads(p.stdout)}


def event_points(model_dir, tag):
    """The number of points of a scalar in a model's event files, read by TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    n = 0
    for path in glob.glob(os.path.join(model_dir, "logs", "*tfevents*")):
        ea = EventAccumulator(path, size_guidance={"tensors": 0, "scalars": 0})
        ea.Reload()
        if tag in ea.Tags().get("tensors", []):
            n += len(ea.Tensors(tag))
        elif tag in ea.Tags().get("scalars", []):
            n += len(ea.Scalars(tag))
    return n


class Ui:
    """`kiln ui` on a free port; the URL is what it prints on its first line."""

    def __init__(self, kiln_bin, store, web, serving):
        self.proc = subprocess.Popen([kiln_bin, "ui", "--port", "0", "--metadata", store,
                                      "--web", web, "--serving", serving], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(10)
        m = re.search(r"kiln ui on (http://127\.0\.0\.1:\d+/)", line[0] if line else "")
        if not m:
            self.proc.kill()
            raise AssertionError(f"kiln ui did not start: {line!r} {self.proc.stderr.read()}")
        self.url = m.group(1)

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def test_every_view_shows_the_artifacts_numbers_in_a_browser(kiln, kiln_bin, tmp_path):
    started = time.monotonic()
    web = web_dir(kiln_bin)
    assert os.path.exists(os.path.join(web, "index.html")), f"no built web app in {web}"
    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium is missing: run scripts/setup"
    assert shutil.which("node"), "node is missing"
    assert os.path.isdir(os.path.join(ROOT, "web", "node_modules", "playwright-core")), \
        "web/node_modules is missing: run scripts/setup"

    # The store: day 1 (normal, pushed as version 1), day 2 (promo: drift holds the push
    # until approved, then version 2, evaluated against version 1 as its baseline).
    d = tmp_path
    for name in ("pipeline.yaml", "train.yaml", "eval.yaml", "generate.py"):
        shutil.copy(os.path.join(EXAMPLE, name), d / name)
    with open(d / "pipeline.yaml", "a") as f:
        f.write("metadata: sqlite:meta.sqlite\n")
    store = f"sqlite:{d / 'meta.sqlite'}"

    def day(n):
        subprocess.run([sys.executable, str(d / "generate.py"), str(d / "data"), "--day", str(n),
                        "--rows", str(ROWS)], check=True, capture_output=True)

    day(1)
    kiln("run", d / "pipeline.yaml", "--run-id", "day-1")
    day(2)
    p = kiln("run", d / "pipeline.yaml", "--run-id", "day-2", check=False)
    assert p.returncode == 3, p.stdout + p.stderr  # held: drift
    kiln("approve", "day-2", "--pipeline", d / "pipeline.yaml")

    runs = d / "runs"
    run1, run2 = load(runs / "day-1" / "run.json"), load(runs / "day-2" / "run.json")
    assert run2["state"] == "succeeded" and run2["approved"] is True
    models = artifact_ids(kiln, store, "Model")
    model1, model2 = models[str(runs / "day-1/train/out")], models[str(runs / "day-2/train/out")]
    examples = artifact_ids(kiln, store, "Examples")[str(runs / "day-2/import/out")]
    transform = artifact_ids(kiln, store, "TransformGraph")[str(runs / "day-2/transform/out")]

    stats = load(runs / "day-2/stats/out/statistics.json")
    train_split = next(ds for ds in stats["datasets"] if ds["name"] == "train")
    price = next(f for f in train_split["features"] if f["name"] == "price")["numStats"]
    hour = next(f for f in train_split["features"] if f["name"] == "hour")["numStats"]
    anomalies = load(runs / "day-2/validate/out/anomalies.json")
    drift = {m["path"]["step"][0]: m["drift_measurements"][0]["value"]
             for m in anomalies.get("drift_skew_info", [])}
    evaluation = load(runs / "day-2/evaluate/out/evaluation.json")
    blessing = load(runs / "day-2/evaluate/out/blessing.json")
    sl = next(s for s in evaluation["slices"] if s["slice"] == "user_type=new")
    manifest = load(runs / "day-2/train/out/manifest.json")
    hyper = manifest["config"]["train_config"]["model"]

    expected = {
        "runs": [{"run_id": r["run_id"], "state": r["state"]} for r in (run1, run2)],
        "run": {
            "pipeline": run2["pipeline"], "run_id": run2["run_id"], "state": run2["state"],
            "seconds": run2["seconds"],
            "components": {c["name"]: c["state"] for c in run2["components"]},
            "seconds_of": {c["name"]: c["seconds"] for c in run2["components"]},
            "edges": sum(len(c.get("upstream", [])) for c in run2["components"]),
            "log_component": "train",
            "log": (runs / "day-2/train/log.txt").read_text()[-262144:],
        },
        "models": {
            "name": "recsys", "version": 2, "model_id": model2,
            "model_uri": str(runs / "day-2/train/out"),
            "blessing_status": blessing["status"], "slice": sl["slice"],
            "auc": sl["candidate"]["metrics"]["auc"], "baseline_auc": sl["baseline"]["metrics"]["auc"],
            "example_count": sl["example_count"],
        },
        "lineage": {"neighbours": [examples, transform]},
        "data": {
            "num_examples": {ds["name"]: int(ds["numExamples"]) for ds in stats["datasets"]},
            "stats": {"stat-price-mean": price["mean"], "stat-price-median": price["median"],
                      "stat-price-max": price["max"], "stat-hour-std_dev": hour["stdDev"]},
            "anomalies": sorted(anomalies.get("anomaly_info", {})),
            "drift": drift,
            "numeric_feature": "price", "string_feature": "user_type",
        },
        "training": {
            "run": "day-2", "runs": ["day-1", "day-2"],
            "loss_points": sum(event_points(runs / r / "train/out", "train/loss")
                               for r in ("day-1", "day-2")),
            "hyperparameters": {"learning_rate": hyper["learning_rate"],
                                "batch_size": hyper["batch_size"], "epochs": hyper["epochs"]},
        },
        # A day that starts while the page is open: the page follows it without reloading.
        "live": {"pipeline": "recsys", "run_id": "day-4", "cwd": str(d),
                 "cmd": [kiln_bin, "run", str(d / "pipeline.yaml"), "--run-id", "day-4"]},
    }
    # The checks need these to be there at all.
    assert expected["data"]["anomalies"] and expected["run"]["edges"] > 0
    assert expected["training"]["loss_points"] > 0 and model1 != model2
    day(4)

    # What serving now looks like: `kiln serve` with both versions, 10% of requests to the
    # new one as a canary.
    (d / "serving.yaml").write_text(
        f"models:\n  - name: recsys\n    base_path: {d / 'serving' / 'recsys'}\n"
        "    version_policy: {latest: 2}\n    version_labels: {stable: 1, canary: 2}\n"
        "    traffic:\n      split: {stable: 90, canary: 10}\n")
    expected["serving"] = {"model": "recsys", "versions": {"1": "AVAILABLE", "2": "AVAILABLE"},
                           "shares": {"1": 0.9, "2": 0.1}}

    shots = os.path.join(BINARY_DIR or str(tmp_path), "ui-screenshots")
    server = Server(kiln_bin, "--model_config_file", d / "serving.yaml")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = call(server.port, "/v1/models/recsys")[1].get("model_version_status", [])
            if sorted(v["version"] for v in status if v["state"] == "AVAILABLE") == ["1", "2"]:
                break
            time.sleep(0.1)
        (d / "expected.json").write_text(json.dumps(expected))
        ui = Ui(kiln_bin, store, web, f"http://127.0.0.1:{server.port}")
        try:
            p = subprocess.run(["node", os.path.join(ROOT, "web", "tests", "browser.mjs"),
                                "--url", ui.url, "--expect", str(d / "expected.json"),
                                "--out", shots, "--chromium", CHROMIUM],
                               capture_output=True, text=True, timeout=55)
        finally:
            code = ui.stop()
    finally:
        assert server.stop() == 0
    assert p.stdout.strip(), f"browser.mjs printed nothing\n{p.stderr}"
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["failures"] == [], "\n".join(report["failures"]) + f"\n{p.stderr}"
    assert report["ok"] and p.returncode == 0, report
    assert code in (0, -15), f"kiln ui exited {code}"

    # The run the page watched ended as its run.json says.
    live = load(runs / "day-4" / "run.json")
    assert report["seen"]["live_final_state"] == live["state"]
    assert report["seen"]["live_exit_code"] == {"succeeded": 0, "held": 3}[live["state"]]

    for view in ("runs", "run", "models", "lineage", "data", "training"):
        png = os.path.join(shots, f"{view}.png")
        with open(png, "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n", png
        assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (1280, 800)
    assert time.monotonic() - started < 60, f"took {time.monotonic() - started:.1f} s"

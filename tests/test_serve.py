"""End-to-end: `kiln serve` over real HTTP on loopback: TF Serving's REST API (status,
metadata, predict in row and column form, b64 values, labels), its error statuses, a new
version taking over while requests keep flowing, and a drain on SIGTERM."""
import base64
import csv
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT

CANCER = os.path.join(ROOT, "tests", "data", "sklearn", "breast_cancer.csv")


def call(port, path, body=None, method=None):
    """(HTTP status, parsed JSON body)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Server:
    def __init__(self, kiln_bin, *args):
        self.p = subprocess.Popen([kiln_bin, "serve", "--rest_api_port", "0", *map(str, args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.search(r"REST API on (https?)://127\.0\.0\.1:(\d+)", line)
        assert m, (line, self.p.stderr.read())
        self.scheme, self.port = m.group(1), int(m.group(2))

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=30)
        self.p_stderr = self.p.stderr.read()
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


def train(kiln, out, rounds=20):
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = out.parent / f"cfg{rounds}.yaml"  # not a version directory: ignored by the server
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   f"model: {{type: gbdt, num_rounds: {rounds}}}\ntraining: {{checkpoint_every: 0}}\n")
    kiln("train", "--config", cfg, "--data", CANCER, "--out", out, "-q", "--no-metadata")


@pytest.fixture
def served(kiln, kiln_bin, tmp_path):
    train(kiln, tmp_path / "models" / "cancer" / "1")
    s = Server(kiln_bin, "--model_name", "cancer", "--model_base_path", tmp_path / "models" / "cancer",
               "--file_system_poll_wait_seconds", "0.1")
    yield s, tmp_path
    if s.p.poll() is None:
        s.stop()


def test_status_metadata_and_predict_match_kiln_predict(kiln, served):
    s, tmp_path = served
    assert call(s.port, "/v1/models/cancer") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    code, meta = call(s.port, "/v1/models/cancer/versions/1/metadata")
    assert code == 200
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["mean_radius"]["dtype"] == "DT_DOUBLE"
    assert set(sig["outputs"]) == {"scores", "class_ids"}

    with open(CANCER, newline="") as f:
        rows = list(csv.DictReader(f))[:25]
    instances = [{k: float(v) for k, v in r.items() if k != "diagnosis"} for r in rows]
    code, rows_out = call(s.port, "/v1/models/cancer:predict", {"instances": instances})
    assert code == 200, rows_out
    columns = {k: [i[k] for i in instances] for k in instances[0]}
    code, cols_out = call(s.port, "/v1/models/cancer/versions/1:predict",
                          {"signature_name": "serving_default", "inputs": columns})
    assert code == 200, cols_out
    # The same rows through `kiln predict`: the same scores.
    with open(tmp_path / "rows.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    kiln("predict", "--model", tmp_path / "models" / "cancer" / "1", tmp_path / "rows.csv",
         "--out", tmp_path / "p.csv", "-q")
    with open(tmp_path / "p.csv") as f:
        expected = [float(r["score"]) for r in csv.DictReader(f)]
    got = [p["scores"] for p in rows_out["predictions"]]
    assert got == pytest.approx(expected, abs=1e-6)
    assert cols_out["outputs"]["scores"] == pytest.approx(expected, abs=1e-6)
    assert [p["class_ids"] for p in rows_out["predictions"]] == [int(e >= 0.5) for e in expected]
    assert s.stop() == 0


def test_errors_have_tf_servings_statuses(served):
    s, _ = served
    cases = [
        ("/v1/models/cancer:predict", {"instances": [{"mean_radius": "big"}]}, 400,
         "feature 'mean_radius': expected a number"),
        ("/v1/models/cancer:predict", b"{not json", 400, "not a JSON object"),
        ("/v1/models/cancer:predict", {"instances": [], "inputs": {}}, 400, "exactly one of"),
        ("/v1/models/cancer:predict", {"instances": [{}], "signature_name": "other"}, 400,
         "unknown signature_name"),
        ("/v1/models/cancer:predict", {"inputs": {"mean_radius": [1, 2], "mean_area": [1]}}, 400,
         "has 2 values; the others 1"),
        ("/v1/models/cancer:predict", {"instances": [{"mean_radius": {"b64": "!!"}}]}, 400,
         "not valid base64"),
        ("/v1/models/nope:predict", {"instances": [{}]}, 404, "no model 'nope'"),
        ("/v1/models/cancer/versions/7:predict", {"instances": [{}]}, 404, "no available version 7"),
        ("/v1/models/cancer/labels/stable:predict", {"instances": [{}]}, 404, "no label 'stable'"),
        ("/v1/models/..%2f:predict", {"instances": [{}]}, 400, "model name"),
        ("/v1/models/cancer:explain", {"examples": []}, 501, ":explain"),
        ("/v1/models/cancer:regress", {"examples": [{}]}, 400, "is a binary model; use :classify"),
        ("/v1/models/cancer:classify", {"instances": [{}]}, 400, "needs \"examples\""),
        ("/v3/health/live", None, 404, "no such endpoint"),
        ("/v2/models/cancer/infer", {"inputs": [{"name": "mean_radius", "shape": [2],
                                                 "datatype": "FP64", "data": [1.0]}]}, 400,
         "shape [2] but 1 values"),
        ("/v2/models/cancer/versions/9/infer", {"inputs": []}, 404, "no available version 9"),
    ]
    for path, body, status, message in cases:
        code, out = call(s.port, path, body)
        assert code == status, (path, out)
        assert message in out["error"], (path, out)
    # A body over the limit (16 MiB) is refused from its Content-Length, before it is sent.
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/models/cancer:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 17825792\r\n\r\n")
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413") and "larger" in reply
    # Not HTTP at all: 400, and the connection is closed.
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        sock.sendall(b"\x00\x01 hello\r\n\r\n")
        assert sock.recv(65536).decode(errors="replace").startswith("HTTP/1.1 400")
    # Still serving.
    assert call(s.port, "/v1/models/cancer")[0] == 200


def test_b64_strings_and_labels_from_a_config_file(kiln, kiln_bin, tmp_path):
    # A string feature sent as base64 bytes, and version labels from TF Serving's config.
    rows = ["color,size,y"] + [f"{c},{i % 7},{int(c == 'red')}" for i in range(300)
                               for c in ("red", "blue")]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "t.yaml").write_text("label: y\ntask: binary\nmodel: {type: gbdt, num_rounds: 5}\n")
    for v in (1, 2):
        kiln("train", "--config", tmp_path / "t.yaml", "--data", tmp_path / "d.csv", "--out",
             tmp_path / "colors" / str(v), "-q", "--no-metadata")
    (tmp_path / "models.config").write_text(f"""
model_config_list {{
  config {{
    name: 'colors'
    base_path: '{tmp_path / "colors"}'
    model_version_policy {{ all {{}} }}
    version_labels {{ key: 'stable' value: 1 }}
    version_labels {{ key: 'canary' value: 2 }}
  }}
}}
""")
    s = Server(kiln_bin, "--model_config_file", tmp_path / "models.config")
    try:
        red = {"b64": base64.b64encode(b"red").decode()}
        for path in ("/v1/models/colors/labels/stable:predict", "/v1/models/colors/labels/canary:predict"):
            code, out = call(s.port, path, {"instances": [{"color": red, "size": 3}, {"color": "blue", "size": 3}]})
            assert code == 200, out
            assert out["predictions"][0]["scores"] > 0.6 > 0.4 > out["predictions"][1]["scores"]
        code, out = call(s.port, "/v1/models/colors/labels/canary")
        assert code == 200 and [v["version"] for v in out["model_version_status"]] == ["2"]
    finally:
        assert s.stop() == 0


def test_a_new_version_takes_over_without_a_failed_request(kiln, served):
    """A new version published every second for 30 s (copied in, then renamed into place,
    as a deployment tool would) while 4 clients send requests without pause: not one
    request fails, and the last version ends up the only one served."""
    import shutil
    s, tmp_path = served
    base = tmp_path / "models" / "cancer"
    train(kiln, tmp_path / "staging" / "a", rounds=25)
    train(kiln, tmp_path / "staging" / "b", rounds=35)
    with open(CANCER, newline="") as f:
        row = {k: float(v) for k, v in next(csv.DictReader(f)).items() if k != "diagnosis"}
    failures, count, stop = [], [0], threading.Event()

    def load():
        while not stop.is_set():
            count[0] += 1
            try:  # a reset or dropped connection is a failure too, not a dead thread
                code, out = call(s.port, "/v1/models/cancer:predict", {"instances": [row]})
            except Exception as e:
                failures.append(repr(e))
                continue
            if code != 200:
                failures.append(out)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for v in range(2, 32):
            staged = base / f".incoming-{v}"  # not a version number: ignored until renamed
            shutil.copytree(tmp_path / "staging" / ("a" if v % 2 else "b"), staged)
            os.rename(staged, base / str(v))
            time.sleep(1)
        deadline = time.time() + 30
        while time.time() < deadline:
            code, out = call(s.port, "/v1/models/cancer")
            available = [x["version"] for x in out["model_version_status"] if x["state"] == "AVAILABLE"]
            if available == ["31"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"version 31 did not take over: {out}")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [] and count[0] > 300, (failures[:3], count)
    # Every version was served in turn (loaded, then unloaded without an error).
    states = {x["version"]: (x["state"], x["status"]["error_code"]) for x in out["model_version_status"]}
    assert all(states[str(v)] == ("END", "OK") for v in range(1, 31)), states
    assert s.stop() == 0


def test_kserve_v2_with_tritonclient(served):
    """KServe's v2 protocol through Triton's own Python client (tritonclient.http)."""
    import numpy as np
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    s, _ = served
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{s.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cancer") and client.is_model_ready("cancer", "1")
    assert not client.is_model_ready("cancer", "7")
    assert client.get_server_metadata()["name"] == "kiln"
    meta = client.get_model_metadata("cancer")
    assert meta["name"] == "cancer" and meta["versions"] == ["1"]
    assert {o["name"] for o in meta["outputs"]} == {"scores", "class_ids"}

    with open(CANCER, newline="") as f:
        rows = list(csv.DictReader(f))[:10]
    inputs = []
    for spec in meta["inputs"]:
        t = httpclient.InferInput(spec["name"], [len(rows)], "FP64")
        t.set_data_from_numpy(np.array([float(r[spec["name"]]) for r in rows]), binary_data=False)
        inputs.append(t)
    result = client.infer("cancer", inputs, request_id="r1", outputs=[
        httpclient.InferRequestedOutput("scores", binary_data=False)])
    scores = result.as_numpy("scores")
    assert result.get_response()["id"] == "r1" and result.as_numpy("class_ids") is None
    code, v1 = call(s.port, "/v1/models/cancer:predict", {"instances": [
        {k: float(v) for k, v in r.items() if k != "diagnosis"} for r in rows]})
    assert code == 200
    assert scores.tolist() == pytest.approx([p["scores"] for p in v1["predictions"]], abs=1e-6)

    bad = httpclient.InferInput("mean_radius", [1], "BYTES")
    bad.set_data_from_numpy(np.array([b"wide"], dtype=object), binary_data=False)
    with pytest.raises(InferenceServerException, match="expected a number"):
        client.infer("cancer", [bad])
    with pytest.raises(InferenceServerException, match="no model 'nope'"):
        client.infer("nope", inputs)
    client.close()


def test_a_thousand_malformed_requests_and_a_slow_client(kiln, kiln_bin, tmp_path):
    """Bounded abuse on loopback: every malformed request gets a 4xx with a JSON error, a
    client that stalls is cut off at the timeout, and the server keeps answering."""
    import random
    train(kiln, tmp_path / "models" / "cancer" / "1")
    s = Server(kiln_bin, "--model_name", "cancer", "--model_base_path", tmp_path / "models" / "cancer",
               "--rest_api_timeout_in_ms", "500")
    try:
        rng = random.Random(11)
        good = json.dumps({"instances": [{"mean_radius": 14.1, "mean_texture": 19.3}]})
        bodies = []
        for i in range(1000):
            kind = i % 5
            if kind == 0:  # truncated or corrupted JSON
                b = good[:rng.randrange(len(good))]
            elif kind == 1:  # random bytes
                b = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            elif kind == 2:  # wrong types and shapes
                b = json.dumps(rng.choice([
                    {"instances": [{"mean_radius": rng.choice(["x", [[1]], {"a": 1}, True])}]},
                    {"instances": {"mean_radius": 1}}, {"inputs": [1, 2]}, [], "text", 12,
                    {"instances": [1, 2, 3]}, {"inputs": {"mean_radius": 5}}]))
            elif kind == 3:  # one byte flipped
                raw = bytearray(good.encode())
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
                b = bytes(raw)
            else:  # nested deeply
                depth = rng.randrange(1, 2000)
                b = "[" * depth + "]" * depth
            bodies.append(b if isinstance(b, bytes) else b.encode())
        codes = {}
        for b in bodies:
            code, out = call(s.port, "/v1/models/cancer:predict", b)
            codes[code] = codes.get(code, 0) + 1
            if code != 200:
                assert 400 <= code < 500 and out["error"], (b[:80], code, out)
        assert codes.get(400, 0) > 900, codes  # a few flipped bits still make valid requests
        # A client that sends half a request and stalls is closed after the timeout ...
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as slow:
            slow.sendall(b"POST /v1/models/cancer:predict HTTP/1.1\r\nContent-Le")
            start = time.time()
            assert call(s.port, "/v1/models/cancer")[0] == 200  # others are served meanwhile
            assert slow.recv(100) == b""  # closed by the server
            # closed by the read timeout (500 ms here), not at once
            assert 0.3 < time.time() - start < 5
        # Nesting a million deep (8 MB) must not exhaust the stack.
        deep = b'{"instances": ' + b"[" * 1000000 + b"]" * 1000000 + b"}"
        code, out = call(s.port, "/v1/models/cancer:predict", deep)
        assert code == 400, out
        deep_v2 = (b'{"inputs": [{"name": "mean_radius", "shape": [1], "datatype": "FP64", '
                   b'"data": ' + b"[" * 1000000 + b"]" * 1000000 + b"}]}")
        assert call(s.port, "/v2/models/cancer/infer", deep_v2)[0] == 400
        assert call(s.port, "/v1/models/cancer:predict", good.encode())[0] == 200
    finally:
        assert s.stop() == 0


def test_prometheus_metrics_pass_promtool(served):
    s, _ = served
    for _ in range(3):
        assert call(s.port, "/v1/models/cancer:predict", {"instances": [{"mean_radius": 12.0}]})[0] == 200
    assert call(s.port, "/v1/models/cancer:predict", {"instances": [{"mean_radius": "x"}]})[0] == 400
    assert call(s.port, "/v1/models/cancer/labels/none:predict", {"instances": [{}]})[0] == 404
    assert call(s.port, "/v1/models/cancer/versions/1:classify", {"examples": [{}]})[0] == 200
    assert call(s.port, "/v1/models/cancer:bogus", {})[0] == 501
    for path in ("/metrics", "/monitoring/prometheus/metrics"):
        with urllib.request.urlopen(f"http://127.0.0.1:{s.port}{path}", timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
    lines = dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))
    # Answered requests carry the version that answered; the others the one asked for.
    ok = 'kiln_requests_total{model="cancer",version="1",api="v1_predict",code="200"}'
    assert float(lines[ok]) == 3
    assert float(lines['kiln_requests_total{model="cancer",version="latest",api="v1_predict",'
                       'code="400"}']) == 1
    assert float(lines['kiln_requests_total{model="cancer",version="label:none",'
                       'api="v1_predict",code="404"}']) == 1
    assert float(lines['kiln_request_duration_seconds_count{model="cancer",api="v1_predict"}']) == 5
    assert float(lines['kiln_requests_total{model="cancer",version="1",api="v1_classify",'
                       'code="200"}']) == 1
    assert float(lines['kiln_requests_total{model="cancer",version="latest",api="v1_other",'
                       'code="501"}']) == 1
    assert float(lines['kiln_model_versions_available{model="cancer"}']) == 1
    assert float(lines['kiln_model_version_load_failures{model="cancer"}']) == 0


def test_classify_answers_class_score_pairs(served):
    s, _ = served
    with open(CANCER, newline="") as f:
        rows = list(csv.DictReader(f))[:4]
    examples = [{k: float(v) for k, v in r.items() if k not in ("diagnosis", "mean_radius")}
                for r in rows]
    code, out = call(s.port, "/v1/models/cancer/versions/1:classify",
                     {"context": {"mean_radius": 15.0}, "examples": examples})
    assert code == 200, out
    for e in examples:
        e["mean_radius"] = 15.0
    code, pred = call(s.port, "/v1/models/cancer:predict", {"instances": examples})
    assert code == 200 and len(out["result"]) == len(pred["predictions"]) == 4, (out, pred)
    for pairs, p in zip(out["result"], pred["predictions"]):
        assert [c for c, _ in pairs] == ["benign", "malignant"]
        assert pairs[1][1] == pytest.approx(p["scores"], abs=1e-6)
        assert pairs[0][1] == pytest.approx(1 - p["scores"], abs=1e-6)


def test_regress_answers_the_prediction(kiln, kiln_bin, tmp_path):
    (tmp_path / "r.yaml").write_text("label: mean_area\ntask: regression\n"
                                     "model: {type: gbdt, num_rounds: 10}\n")
    kiln("train", "--config", tmp_path / "r.yaml", "--data", CANCER, "--out",
         tmp_path / "area" / "1", "-q", "--no-metadata")
    s = Server(kiln_bin, "--model_name", "area", "--model_base_path", tmp_path / "area")
    try:
        examples = [{"mean_radius": 10.0, "mean_perimeter": 60.0},
                    {"mean_radius": 20.0, "mean_perimeter": 130.0}]
        code, out = call(s.port, "/v1/models/area:regress", {"examples": examples})
        assert code == 200, out
        code, pred = call(s.port, "/v1/models/area:predict", {"instances": examples})
        assert out["result"] == pytest.approx(pred["predictions"], abs=1e-6)
        assert out["result"][1] > out["result"][0]
        assert call(s.port, "/v1/models/area:classify", {"examples": examples})[0] == 400
    finally:
        assert s.stop() == 0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_load_unload_cycles_do_not_grow_memory_and_reload_reports_errors(kiln, kiln_bin, tmp_path):
    """Switching between two versions through the admin reload endpoint 100 times: each
    switch loads one version (verify, warm up) and unloads the other. RSS after the cycles
    stays within 5% of RSS after the first ten."""
    base = tmp_path / "models" / "cancer"
    train(kiln, base / "1", rounds=20)
    train(kiln, base / "2", rounds=30)
    config = tmp_path / "models.yaml"

    def pin(version):
        config.write_text(f"models:\n  - name: cancer\n    base_path: {base}\n"
                          f"    version_policy: {{specific: [{version}]}}\n")

    pin(1)
    s = Server(kiln_bin, "--model_config_file", config, "--file_system_poll_wait_seconds", "3600")
    try:
        baseline = None
        for cycle in range(110):
            version = 1 + cycle % 2
            pin(version)
            assert call(s.port, "/kiln/admin/reload", b"", method="POST")[0] == 200
            code, status = call(s.port, "/v1/models/cancer")
            assert code == 200
            assert [v["version"] for v in status["model_version_status"]
                    if v["state"] == "AVAILABLE"] == [str(version)], status
            if cycle == 9:
                baseline = rss_kib(s.p.pid)
        growth = rss_kib(s.p.pid) / baseline - 1
        assert growth < 0.05, f"RSS grew {growth:.1%} over 100 load/unload cycles"

        # A config that does not parse keeps the running one, and says why.
        config.write_text("models: [{name: cancer}]\n")
        code, body = call(s.port, "/kiln/admin/reload", b"", method="POST")
        assert code == 400 and "base_path" in body["error"], body
        assert call(s.port, "/kiln/admin/reload")[0] == 501  # GET
        code, status = call(s.port, "/v1/models/cancer")
        assert [v["state"] for v in status["model_version_status"]
                if v["version"] == "2"] == ["AVAILABLE"], status
    finally:
        assert s.stop() == 0


def test_sampled_request_log_feeds_stats_and_skew_validation(kiln, kiln_bin, tmp_path):
    """Every request logged (rate 1): the log holds the rows sent, `kiln stats` reads it,
    and `kiln validate --serving` flags a feature whose serving values moved away from
    training's."""
    train(kiln, tmp_path / "models" / "cancer" / "1")
    s = Server(kiln_bin, "--model_name", "cancer", "--model_base_path", tmp_path / "models" / "cancer",
               "--request_log_dir", tmp_path / "log", "--request_log_sample_rate", "1")
    with open(CANCER, newline="") as f:
        rows = list(csv.DictReader(f))[:60]
    instances = [{k: float(v) for k, v in r.items() if k != "diagnosis"} for r in rows]
    for i in instances:  # serving sees radii twice training's
        i["mean_radius"] *= 2
    for i in range(0, 60, 6):
        assert call(s.port, "/v1/models/cancer:predict", {"instances": instances[i:i + 6]})[0] == 200
    # A bad request is not logged.
    assert call(s.port, "/v1/models/cancer:predict", {"instances": [{"mean_radius": "x"}]})[0] == 400
    assert s.stop() == 0
    log = tmp_path / "log" / "cancer" / "requests.jsonl"
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged == instances
    kiln("stats", log, "--out", tmp_path / "serving_stats", "-q")
    stats = json.loads((tmp_path / "serving_stats" / "statistics.json").read_text())
    feats = {f["name"]: f for f in stats["datasets"][0]["features"]}
    assert feats["mean_radius"]["numStats"]["commonStats"]["numNonMissing"] == "60"
    assert feats["mean_radius"]["numStats"]["mean"] == pytest.approx(
        sum(i["mean_radius"] for i in instances) / 60)

    # Skew: training data against the serving log's statistics, with a comparator on
    # mean_radius (shifted) and on mean_texture (not shifted).
    kiln("stats", CANCER, "--out", tmp_path / "train_stats", "-q")
    kiln("schema", "infer", "--stats", tmp_path / "train_stats" / "statistics.pb",
         "--out", tmp_path / "schema.pbtxt")
    schema = (tmp_path / "schema.pbtxt").read_text()
    for name in ("mean_radius", "mean_texture"):
        head = f'name: "{name}"'
        assert head in schema
        schema = schema.replace(head, head + "\n  skew_comparator { jensen_shannon_divergence "
                                "{ threshold: 0.3 } }", 1)
    (tmp_path / "schema.pbtxt").write_text(schema)
    p = kiln("validate", CANCER, "--schema", tmp_path / "schema.pbtxt", "--out", tmp_path / "v",
             "--serving", tmp_path / "serving_stats", check=False)
    assert p.returncode == 3, (p.stdout, p.stderr)
    anomalies = json.loads((tmp_path / "v" / "anomalies.json").read_text())
    assert set(anomalies["anomaly_info"]) == {"mean_radius"}, p.stdout


PLANTED_MODEL = '''
import sys, torch
class M(torch.nn.Module):
    def __init__(self, fail: bool):
        super().__init__()
        self.fail = fail
    def forward(self, x):
        if self.fail and bool((x[:, 0] > 100).any()):
            raise RuntimeError("planted failure")
        return torch.sigmoid(x[:, 0] - x[:, 1])
for name, fail in (("good", False), ("bad", True)):
    torch.jit.save(torch.jit.script(M(fail)), f"{sys.argv[1]}/{name}.pt")
'''


class Webhook:
    """A loopback HTTP receiver that keeps every JSON body POSTed to it."""

    def __init__(self):
        import http.server
        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_canary_split_sticky_routing_and_rollback(kiln, kiln_bin, tmp_path):
    """Stable version 1 and canary version 2 (a TorchScript model that fails on a > 100) at
    70/30, sticky by x-user-id. Clean traffic is split by the weights and the same user
    always lands on the same version; then requests the canary fails on roll it back:
    all traffic returns to stable, the status endpoint, metrics and the webhook say so,
    and the canary is not tried again."""
    (tmp_path / "make.py").write_text(PLANTED_MODEL)  # TorchScript reads the class's source
    subprocess.run(["/usr/bin/python3", tmp_path / "make.py", tmp_path], check=True, timeout=120)
    (tmp_path / "sig.yaml").write_text("task: binary\nclasses: [no, yes]\ninputs: [a, b]\n")
    base = tmp_path / "models" / "m"
    for version, name in ((1, "good"), (2, "bad")):
        kiln("import-model", "--model", tmp_path / f"{name}.pt", "--signature", tmp_path / "sig.yaml",
             "--out", base / str(version))
    hook = Webhook()
    config = tmp_path / "models.yaml"
    config.write_text(f"""models:
  - name: m
    base_path: {base}
    version_policy: {{latest: 2}}
    version_labels: {{stable: 1, canary: 2}}
    traffic:
      split: {{stable: 70, canary: 30}}
      sticky_header: x-user-id
    rollback:
      canary: canary
      stable: stable
      window_seconds: 60
      min_requests: 20
      max_error_rate_increase: 0.05
      webhook: http://127.0.0.1:{hook.port}/alert
""")
    store = f"sqlite:{tmp_path / 'meta.db'}"
    s = Server(kiln_bin, "--model_config_file", config, "--metadata", store)

    def predict(a, user):
        body = json.dumps({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [a]},
                                      {"name": "b", "shape": [1], "datatype": "FP64", "data": [0]}]})
        req = urllib.request.Request(f"http://127.0.0.1:{s.port}/v2/models/m/infer", data=body.encode(),
                                     headers={"x-user-id": user})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())["model_version"]
        except urllib.error.HTTPError as e:
            return e.code, None

    try:
        # Sticky: each user keeps its version; across 200 users the canary gets about 30%.
        first = {}
        for u in range(200):
            code, version = predict(1.0, f"user{u}")
            assert code == 200
            first[u] = version
        for u in range(0, 200, 7):
            assert predict(2.0, f"user{u}") == (200, first[u])
        canary_share = sum(v == "2" for v in first.values()) / 200
        assert 0.18 < canary_share < 0.42, canary_share
        code, traffic = call(s.port, "/kiln/traffic/m")
        assert code == 200 and traffic.get("rolled_back", []) == [], traffic

        # Planted failures: the canary fails every request with a > 100.
        codes = [predict(1000.0, f"user{u}")[0] for u in range(200)]
        assert set(codes) == {200, 500}, set(codes)  # the model failing is the server's error
        deadline = time.time() + 10
        while not hook.bodies and time.time() < deadline:
            time.sleep(0.05)
        assert len(hook.bodies) == 1, hook.bodies
        event = hook.bodies[0]
        assert event["model"] == "m" and event["canary_version"] == 2 and event["stable_version"] == 1
        code, traffic = call(s.port, "/kiln/traffic/m")
        assert [r["version"] for r in traffic["rolled_back"]] == [2], traffic
        # Everyone is on stable now, even the users the canary had.
        assert {predict(1000.0, f"user{u}") for u in range(0, 200, 3)} == {(200, "1")}
        # A pinned request still reaches the canary (an operator can look at it).
        assert predict_pinned(s.port) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=30) as r:
            metrics = r.read().decode()
        assert 'kiln_rollbacks_total{model="m"} 1' in metrics
    finally:
        assert s.stop() == 0
    assert "rolled back m version 2 to version 1" in s.p_stderr
    # The store has both versions' loads and the rollback, linked to the canary's Model.
    loads = json.loads(kiln("meta", "ls", "executions", "--type", "ModelServing", "--json",
                            "--metadata", store).stdout)
    assert sorted((e["custom_properties"]["version"], e["custom_properties"]["event"])
                  for e in loads) == [(1, "available"), (2, "available")], loads
    [rollback] = json.loads(kiln("meta", "ls", "executions", "--type", "ModelRollback", "--json",
                                 "--metadata", store).stdout)
    assert rollback["custom_properties"]["canary_version"] == 2
    assert rollback["custom_properties"]["stable_version"] == 1
    [model] = json.loads(kiln("meta", "ls", "artifacts", "--uri", str(base / "2"), "--json",
                              "--metadata", store).stdout)
    assert model["type"] == "Model"


def predict_pinned(port):
    body = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
                       {"name": "b", "shape": [1], "datatype": "FP64", "data": [0]}]}
    return call(port, "/v2/models/m/versions/2/infer", body)[0]


def test_batching_merges_concurrent_requests_and_keeps_answers(kiln, kiln_bin, tmp_path):
    train(kiln, tmp_path / "models" / "cancer" / "1")
    params = tmp_path / "batching.txt"
    params.write_text("# TF Serving's format\nmax_batch_size { value: 16 }\n"
                      "batch_timeout_micros { value: 20000 }\nnum_batch_threads { value: 1 }\n"
                      "max_enqueued_batches { value: 100 }\n")
    s = Server(kiln_bin, "--model_name", "cancer", "--model_base_path", tmp_path / "models" / "cancer",
               "--enable_batching", "--batching_parameters_file", params)
    with open(CANCER, newline="") as f:
        rows = list(csv.DictReader(f))[:200]
    instances = [{k: float(v) for k, v in r.items() if k != "diagnosis"} for r in rows]
    try:
        expected = call(s.port, "/v1/models/cancer:predict", {"instances": instances})[1]["predictions"]
        got, errors = [None] * 200, []

        def client(t):
            for i in range(t, 200, 8):
                code, body = call(s.port, "/v1/models/cancer:predict", {"instances": [instances[i]]})
                if code != 200:
                    errors.append((i, code, body))
                else:
                    got[i] = body["predictions"][0]

        threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert got == expected  # each request got its own row's answer
        with urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=30) as r:
            lines = dict(l.rsplit(" ", 1) for l in r.read().decode().splitlines()
                         if l and not l.startswith("#"))
        # 201 requests (one of 200 rows, split into pieces of 16) in fewer batches than requests.
        assert float(lines["kiln_batch_size_sum"]) == 400
        batches = float(lines["kiln_batch_size_count"])
        assert 13 <= batches < 200, batches
        assert float(lines["kiln_batch_queue_depth"]) == 0
    finally:
        assert s.stop() == 0

    params.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: -1 }\n")
    p = kiln("serve", "--model_name", "cancer", "--model_base_path", tmp_path / "models" / "cancer",
             "--rest_api_port", "0", "--enable_batching", "--batching_parameters_file", params,
             check=False)
    assert p.returncode == 2 and "batching.txt" in p.stderr and "line 2" in p.stderr, p.stderr

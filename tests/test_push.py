"""End-to-end: `kiln push` publishes a blessed bundle as the next version under a serving
base path; a running `kiln serve` picks it up; unblessed models are refused unless forced;
every push is recorded in the metadata store."""
import json
import os
import time

from test_serve import Server, call, train


def blessing(path, blessed, model=None, failing=()):
    b = {"blessed": blessed, "status": "BLESSED" if blessed else "NOT_BLESSED",
         "failing_checks": list(failing)}
    if model is not None:
        b["model"] = str(model)
    path.mkdir(parents=True, exist_ok=True)
    (path / "blessing.json").write_text(json.dumps(b))
    return path


def files(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = f.read()
    return out


def pushers(kiln):
    p = kiln("meta", "ls", "executions", "--type", "Pusher", "--json")
    return json.loads(p.stdout)


def test_push_serve_and_record(kiln, kiln_bin, tmp_path):
    model = tmp_path / "models" / "cancer-a"
    train(kiln, model)
    base = tmp_path / "serving" / "cancer"
    ok = blessing(tmp_path / "eval-a", True, model)

    p = kiln("push", "--model", model, "--blessing", ok, "--to", base)
    assert p.stdout.strip() == f"pushed {model} to {base}/1 as version 1"
    # Exactly the bundle's listed files, byte for byte (its TensorBoard logs stay behind).
    pushed = files(base / "1")
    original = {k: v for k, v in files(model).items() if k in pushed}
    assert pushed == original
    assert "manifest.json" in pushed
    assert sorted(os.listdir(base)) == ["1"]  # no staging directory left

    s = Server(kiln_bin, "--model_name", "cancer", "--model_base_path", base,
               "--file_system_poll_wait_seconds", "0.1")
    try:
        assert call(s.port, "/v1/models/cancer")[1]["model_version_status"][0]["version"] == "1"
        # A second model, pushed while serving (blessing.json given as a file this time),
        # becomes version 2 and takes over.
        model_b = tmp_path / "models" / "cancer-b"
        train(kiln, model_b, rounds=5)
        ok_b = blessing(tmp_path / "eval-b", True, model_b) / "blessing.json"
        kiln("push", "--model", model_b, "--blessing", ok_b, "--to", base, "-q")
        deadline = time.time() + 20
        while time.time() < deadline:
            status = call(s.port, "/v1/models/cancer")[1]["model_version_status"]
            if [v["version"] for v in status if v["state"] == "AVAILABLE"] == ["2"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"version 2 never took over: {status}")
    finally:
        s.stop()

    records = pushers(kiln)
    assert [r["custom_properties"]["version"] for r in records] == [1, 2]
    first = records[0]["custom_properties"]
    assert first["destination"] == str(base)
    assert first["forced"] is False
    assert first["env.user"] and first["env.host"] and records[0]["create_time"].endswith("Z")
    # The pushed version's lineage leads back to the bundle that was pushed.
    artifacts = json.loads(kiln("meta", "ls", "artifacts", "--type", "PushedModel", "--uri",
                                base / "1", "--json").stdout)
    assert len(artifacts) == 1
    up = kiln("lineage", artifacts[0]["id"], "--direction", "up", "--format", "json").stdout
    assert str(model) in up and str(tmp_path / "eval-a" / "blessing.json") in up


def test_unblessed_is_refused_unless_forced(kiln, tmp_path):
    model = tmp_path / "models" / "cancer"
    train(kiln, model, rounds=5)
    base = tmp_path / "serving" / "cancer"
    bad = blessing(tmp_path / "eval", False, model, ["overall/auc >= 0.99: 0.97"])

    p = kiln("push", "--model", model, "--blessing", bad, "--to", base, check=False)
    assert p.returncode == 3
    assert "NOT_BLESSED" in p.stderr and "overall/auc >= 0.99: 0.97" in p.stderr
    assert not base.exists() or os.listdir(base) == []

    p = kiln("push", "--model", model, "--to", base, check=False)  # no blessing at all
    assert p.returncode == 2
    assert "--blessing" in p.stderr

    other = blessing(tmp_path / "eval-other", True, tmp_path / "models" / "someone-else")
    p = kiln("push", "--model", model, "--blessing", other, "--to", base, check=False)
    assert p.returncode == 2
    assert "blesses" in p.stderr

    p = kiln("push", "--model", model, "--blessing", tmp_path / "nothing-here", "--to", base,
             check=False)
    assert p.returncode == 2

    p = kiln("push", "--model", model, "--blessing", bad, "--to", base, "--force")
    assert p.stdout.strip().endswith("as version 1 (forced)")
    records = pushers(kiln)
    assert len(records) == 1 and records[0]["custom_properties"]["forced"] is True


def test_a_corrupt_bundle_is_never_pushed(kiln, tmp_path):
    model = tmp_path / "models" / "cancer"
    train(kiln, model, rounds=5)
    manifest = json.loads((model / "manifest.json").read_text())
    victim = model / manifest["files"][0]["path"]
    victim.write_bytes(victim.read_bytes() + b" ")
    base = tmp_path / "serving" / "cancer"
    p = kiln("push", "--model", model, "--to", base, "--force", check=False)
    assert p.returncode == 2, p.stderr
    assert manifest["files"][0]["path"] in p.stderr
    assert os.listdir(base) == []
    # Nothing recorded (train ran with --no-metadata, so there is no store at all).
    assert kiln("meta", "ls", "executions", check=False).returncode == 2


def test_infra_validation_gates_the_push(kiln, tmp_path):
    from test_serve import CANCER
    model = tmp_path / "models" / "cancer"
    train(kiln, model, rounds=5)
    base = tmp_path / "serving" / "cancer"
    ok = blessing(tmp_path / "eval", True, model)

    p = kiln("infra-validate", "--model", model, "--data", CANCER, "--rows", 20, "--requests", 50,
             "--out", tmp_path / "infra")
    assert "INFRA_BLESSED (50 requests, 0 failed" in p.stdout
    infra = json.loads((tmp_path / "infra" / "infra_blessing.json").read_text())
    assert infra["blessed"] is True and infra["model"] == str(model)
    assert infra["requests"] == 50 and 0 < infra["p50_ms"] <= infra["p99_ms"]
    kiln("push", "--model", model, "--blessing", ok, "--infra-blessing", tmp_path / "infra",
         "--to", base, "-q")
    assert os.listdir(base) == ["1"]
    up = kiln("meta", "ls", "artifacts", "--type", "InfraBlessing", "--json").stdout
    assert json.loads(up)[0]["properties"]["blessed"] is True

    # The same model with its weights tampered with does not load: not blessed, not pushed.
    manifest = json.loads((model / "manifest.json").read_text())
    weights = next(f["path"] for f in manifest["files"] if f["path"].startswith("model/"))
    (model / weights).write_bytes((model / weights).read_bytes()[:-1])
    p = kiln("infra-validate", "--model", model, "--out", tmp_path / "infra2", check=False)
    assert p.returncode == 3
    assert "INFRA_NOT_BLESSED" in p.stdout and "does not load" in p.stdout
    p = kiln("push", "--model", model, "--blessing", ok, "--infra-blessing", tmp_path / "infra2",
             "--to", base, check=False)
    assert p.returncode == 3 and "INFRA_NOT_BLESSED" in p.stderr
    assert os.listdir(base) == ["1"]


def test_kiln_evaluate_blessing_drives_the_push(kiln, tmp_path):
    from test_serve import CANCER
    model = tmp_path / "models" / "cancer"
    train(kiln, model, rounds=5)
    base = tmp_path / "serving" / "cancer"
    strict = tmp_path / "strict.yaml"
    strict.write_text("slicing:\n  - feature: mean_radius\n    boundaries: [15]\n"
                      "thresholds:\n  - metric: accuracy\n    slices: [mean_radius]\n"
                      "    lower: 0.9999\n")
    p = kiln("evaluate", "--model", model, "--data", CANCER, "--config", strict,
             "--out", tmp_path / "eval-strict", check=False)
    assert p.returncode == 3, p.stderr
    p = kiln("push", "--model", model, "--blessing", tmp_path / "eval-strict", "--to", base,
             check=False)
    assert p.returncode == 3
    assert "NOT_BLESSED" in p.stderr and "mean_radius=" in p.stderr and "accuracy" in p.stderr

    fair = tmp_path / "fair.yaml"
    fair.write_text("thresholds:\n  - metric: auc\n    lower: 0.9\n")
    kiln("evaluate", "--model", model, "--data", CANCER, "--config", fair, "--out",
         tmp_path / "eval-fair")
    kiln("push", "--model", model, "--blessing", tmp_path / "eval-fair", "--to", base, "-q")
    assert os.listdir(base) == ["1"]
    # A blessing of another model does not push this one.
    other = tmp_path / "models" / "other"
    train(kiln, other, rounds=3)
    p = kiln("push", "--model", other, "--blessing", tmp_path / "eval-fair", "--to", base,
             check=False)
    assert p.returncode == 2 and "blesses" in p.stderr

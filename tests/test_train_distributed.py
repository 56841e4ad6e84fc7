"""End-to-end: data-parallel `kiln train --world-size N --rank R --rendezvous ...` with two
local processes (torch c10d over gloo) reaches the quality of one process; rank 0 alone
writes; processes given different data refuse to train together.

The HOST:PORT rendezvous runs libtorch's TCPStore, whose server socket listens on every
interface of rank 0's host; the tests run it inside a private network namespace (only a
loopback device) so that nothing is reachable from outside the machine."""
import json
import os
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT

CANCER = os.path.join(ROOT, "tests", "data", "sklearn", "breast_cancer.csv")
CONFIG = ("label: diagnosis\ntask: binary\npositive_class: malignant\n"
          "model: {type: mlp, hidden_units: [16], batch_size: 16, epochs: 30, "
          "learning_rate: 0.003}\ntraining: {threads: 1, eval_every: 1000}\n")


def netns_prefix():
    """A command prefix that runs in a new network namespace with loopback up."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    flags = "-n" if os.geteuid() == 0 else "-rn"
    probe = subprocess.run([unshare, flags, "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    return [unshare, flags, "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_group(kiln_bin, cfg, data, out, rendezvous, world=2, extra=()):
    """Starts `world` processes; returns their CompletedProcess-like (rc, stdout, stderr)."""
    procs = []
    for rank in range(world):
        d = data[rank] if isinstance(data, list) else data
        procs.append(subprocess.Popen(
            [kiln_bin, "train", "--config", str(cfg), "--data", str(d), "--out", str(out),
             "--no-metadata", "--world-size", str(world), "--rank", str(rank),
             "--rendezvous", rendezvous, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        results.append((p.returncode, stdout, stderr))
    return results


def auc(out):
    return json.load(open(out / "manifest.json"))["config"]["metrics"]["eval"]["auc"]


def test_two_processes_reach_the_quality_of_one(kiln, kiln_bin, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG)
    kiln("train", "--config", cfg, "--data", CANCER, "--out", tmp_path / "one", "--no-metadata")
    one = json.load(open(tmp_path / "one" / "manifest.json"))

    out = tmp_path / "two"
    results = run_group(kiln_bin, cfg, CANCER, out, f"file:{tmp_path / 'rendezvous'}")
    for rc, stdout, stderr in results:
        assert rc == 0, stderr
    assert "rank 1 of 2: trained mlp" in results[1][1]
    two = json.load(open(out / "manifest.json"))
    assert auc(tmp_path / "one") >= 0.98 and auc(out) >= 0.98
    assert abs(auc(out) - auc(tmp_path / "one")) <= 0.01
    # Each process took half of every epoch: half the steps of the single process.
    rows = int(one["provenance"]["train_rows"])
    assert one["config"]["model_summary"]["steps"] == 30 * -(-rows // 16)
    assert two["config"]["model_summary"]["steps"] == 30 * -(-(-(-rows // 2)) // 16)
    # Rank 0 wrote the bundle and nothing else is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "train.yaml", "two"]


def test_host_port_rendezvous(kiln_bin, tmp_path):
    prefix = netns_prefix()
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "m"
    rendezvous = f"127.0.0.1:{free_port()}"
    script = tmp_path / "group.sh"
    # Both processes in one namespace: rank 0's store and both gloo endpoints on its loopback.
    args = ["train", "--config", str(cfg), "--data", CANCER, "--out", str(out), "--no-metadata",
            "--world-size", "2", "--rendezvous", rendezvous]
    quoted = " ".join(f"'{a}'" for a in args)
    script.write_text(f"#!/bin/sh\n'{kiln_bin}' {quoted} --rank 0 & r0=$!\n"
                      f"'{kiln_bin}' {quoted} --rank 1 || exit $?\nwait $r0\n")
    script.chmod(0o755)
    cmd = (prefix or []) + [str(script)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "rank 1 of 2" in p.stdout and "wrote" in p.stdout
    assert auc(out) >= 0.98


def test_processes_with_different_data_refuse_to_train_together(kiln_bin, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG)
    lines = open(CANCER).read().splitlines(keepends=True)
    short = tmp_path / "short.csv"
    short.write_text("".join(lines[:-50]))
    results = run_group(kiln_bin, cfg, [CANCER, short], tmp_path / "m",
                        f"file:{tmp_path / 'rendezvous'}")
    for rc, _, stderr in results:
        assert rc == 2, stderr
        assert "the processes of the group disagree on the training data" in stderr
    assert not (tmp_path / "m").exists()
    # As many rows, one value changed: the data fingerprints differ.
    changed = tmp_path / "changed.csv"
    changed.write_text("".join(lines[:5] + [lines[5].replace(",", ",1", 1)] + lines[6:]))
    results = run_group(kiln_bin, cfg, [CANCER, changed], tmp_path / "m",
                        f"file:{tmp_path / 'rendezvous2'}", extra=("--eval-data", CANCER))
    for rc, _, stderr in results:
        assert rc == 2, stderr
        assert "disagree on the data and training config" in stderr
    assert not (tmp_path / "m").exists()


def test_distributed_usage_errors(kiln, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG)
    base = ["train", "--config", cfg, "--data", CANCER, "--out", tmp_path / "m", "--no-metadata"]
    r = kiln(*base, "--world-size", "2", "--rank", "0", check=False)
    assert r.returncode == 2 and "needs --rendezvous" in r.stderr
    r = kiln(*base, "--world-size", "2", "--rank", "2", "--rendezvous", "file:x", check=False)
    assert r.returncode == 2 and "--rank 2 is not below --world-size 2" in r.stderr
    r = kiln(*base, "--world-size", "2", "--rendezvous", "127.0.0.1:99999", check=False)
    assert r.returncode == 2 and "the port must be in [1, 65535]" in r.stderr
    gbdt = tmp_path / "gbdt.yaml"
    gbdt.write_text("label: diagnosis\ntask: binary\nmodel: {type: gbdt}\n")
    r = kiln("train", "--config", gbdt, "--data", CANCER, "--out", tmp_path / "g",
             "--world-size", "2", "--rendezvous", "file:x", check=False)
    assert r.returncode == 2 and "gbdt trains in one process" in r.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / "g").exists()

"""End-to-end: checkpoints. A `kiln train` killed with SIGKILL mid-training and run again
resumes from its last checkpoint and ends with the model an uninterrupted run trains; a
checkpoint of another run or a damaged one is refused; the progress bar on a terminal."""
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT

CANCER = os.path.join(ROOT, "tests", "data", "sklearn", "breast_cancer.csv")


def checkpoint_step(path):
    """The step in a checkpoint file's header, or None while there is none."""
    try:
        with open(path, "rb") as f:
            magic = f.readline()
            head = f.readline()
    except FileNotFoundError:
        return None
    assert magic == b"kiln-checkpoint 1\n"
    return json.loads(head)["step"]


def kill_after_checkpoint(kiln_bin, args, ckpt_file, min_step, timeout=120):
    """Runs kiln with `args` and SIGKILLs it once a checkpoint at step >= min_step exists."""
    p = subprocess.Popen([kiln_bin, *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            step = checkpoint_step(ckpt_file)
            if step is not None and step >= min_step:
                break
            if p.poll() is not None:
                pytest.fail(f"kiln finished (exit {p.returncode}) before a checkpoint at step "
                            f">= {min_step}; make the run longer\n{p.stderr.read()}")
            time.sleep(0.005)
        else:
            pytest.fail("no checkpoint appeared in time")
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
        p.stdout.close()
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL
    return checkpoint_step(ckpt_file)


def manifest(path):
    return json.load(open(os.path.join(path, "manifest.json")))


def train_args(cfg, out, *extra):
    return ["train", "--config", cfg, "--data", CANCER, "--out", out, "--no-metadata", *extra]


def test_torch_run_killed_mid_training_resumes_to_the_same_model(kiln, kiln_bin, tmp_path):
    cfg = tmp_path / "mlp.yaml"
    # Dropout draws from libtorch's generator, shuffling from kiln's: both are restored.
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   "model: {type: mlp, hidden_units: [16], dropout: 0.2, batch_size: 8, "
                   "epochs: 150, learning_rate: 0.002}\n"
                   "training: {threads: 1, eval_every: 40, checkpoint_every: 50, "
                   "early_stopping: {patience: 1000}}\n")
    kiln(*train_args(cfg, tmp_path / "whole"))

    out = tmp_path / "resumed"
    ckpt = tmp_path / "resumed.ckpt"
    step = kill_after_checkpoint(kiln_bin, train_args(cfg, out), ckpt / "checkpoint", 500)
    assert not out.exists()
    assert step % 50 == 0
    r = kiln(*train_args(cfg, out))
    assert f"resumed from the checkpoint at step {step}" in r.stdout

    whole, resumed = manifest(tmp_path / "whole"), manifest(out)
    assert resumed["config"]["model_summary"]["resumed_from_step"] == step
    for key in ("steps", "epochs", "best_step"):
        assert resumed["config"]["model_summary"][key] == whole["config"]["model_summary"][key]
    for split in ("eval", "train"):
        for metric, value in whole["config"]["metrics"][split].items():
            assert resumed["config"]["metrics"][split][metric] == pytest.approx(value, abs=1e-6)
    # The checkpoints are gone once the bundle is published; so are the killed run's
    # staging files; its logs (flushed at each checkpoint) moved into the bundle.
    assert not ckpt.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.yaml", "resumed", "whole"]
    logs = sorted(os.listdir(out / "logs"))
    assert len(logs) == 2, logs

    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(str(out / "logs"), size_guidance={"tensors": 0})
    acc.Reload()
    steps = {e.step for e in acc.Tensors("train/loss")}
    assert steps == set(range(1, whole["config"]["model_summary"]["steps"] + 1))


def test_gbdt_run_killed_mid_training_resumes_to_the_same_trees(kiln, kiln_bin, tmp_path):
    cfg = tmp_path / "gbdt.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   "model: {type: gbdt, num_rounds: 1500, max_depth: 8, learning_rate: 0.01}\n"
                   "training: {threads: 1, checkpoint_every: 25}\n")
    kiln(*train_args(cfg, tmp_path / "whole"))
    out = tmp_path / "resumed"
    step = kill_after_checkpoint(kiln_bin, train_args(cfg, out), tmp_path / "resumed.ckpt" /
                                 "checkpoint", 100)
    kept = tmp_path / "kept.ckpt"
    shutil.copytree(tmp_path / "resumed.ckpt", kept)

    r = kiln(*train_args(cfg, out))
    assert f"resumed from the checkpoint at step {step}" in r.stdout
    assert (out / "model" / "xgboost.json").read_bytes() == \
        (tmp_path / "whole" / "model" / "xgboost.json").read_bytes()
    assert manifest(out)["config"]["metrics"] == manifest(tmp_path / "whole")["config"]["metrics"]

    # A checkpoint of another config is refused, and left alone.
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace("learning_rate: 0.01", "learning_rate: 0.02"))
    r = kiln(*train_args(other, tmp_path / "o", "--checkpoint-dir", kept), check=False)
    assert r.returncode == 2
    assert "is a checkpoint of another run" in r.stderr and "--no-resume" in r.stderr
    assert not (tmp_path / "o").exists() and (kept / "checkpoint").exists()

    # A damaged one is refused as damaged.
    damaged = tmp_path / "damaged.ckpt"
    shutil.copytree(kept, damaged)
    data = bytearray((damaged / "checkpoint").read_bytes())
    data[-10] ^= 0x40
    (damaged / "checkpoint").write_bytes(bytes(data))
    r = kiln(*train_args(cfg, tmp_path / "d", "--checkpoint-dir", damaged), check=False)
    assert r.returncode == 2
    assert "the checkpoint is damaged" in r.stderr

    # --no-resume discards it and trains from the start, to the same model.
    r = kiln(*train_args(other, tmp_path / "o", "--checkpoint-dir", kept, "--no-resume"))
    assert "resumed" not in r.stdout
    assert not kept.exists()
    assert "resumed_from_step" not in manifest(tmp_path / "o")["config"]["model_summary"]


def test_a_named_checkpoint_dir_keeps_other_files(kiln, kiln_bin, tmp_path):
    """Only what kiln put in a --checkpoint-dir is removed; one on another file system
    (tmpfs) works too: its logs are copied into the bundle."""
    cfg = tmp_path / "g.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   "model: {type: gbdt, num_rounds: 20}\ntraining: {checkpoint_every: 5}\n")
    mine = tmp_path / "scratch"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    kiln(*train_args(cfg, tmp_path / "m", "--checkpoint-dir", mine))
    assert sorted(os.listdir(mine)) == ["keep.txt"]
    # Discarding a checkpoint there removes only kiln's files, too.
    (mine / "checkpoint").write_bytes(b"stale")
    kiln(*train_args(cfg, tmp_path / "n", "--checkpoint-dir", mine, "--no-resume"))
    assert sorted(os.listdir(mine)) == ["keep.txt"]
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        shm = f"/dev/shm/kiln-test-{os.getpid()}-ckpt"
        try:
            kiln(*train_args(cfg, tmp_path / "o", "--checkpoint-dir", shm))
            assert len(os.listdir(tmp_path / "o" / "logs")) == 1
            assert not os.path.exists(shm)
        finally:
            shutil.rmtree(shm, ignore_errors=True)


def test_checkpoint_every_zero_writes_no_checkpoint(kiln, tmp_path):
    cfg = tmp_path / "g.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   "model: {type: gbdt, num_rounds: 20}\ntraining: {checkpoint_every: 5}\n")
    # A file in the checkpoint directory that is no checkpoint: a run that checkpoints
    # reads it and fails; one with checkpoints off (the flag overriding the config) neither
    # reads nor removes it, and its logs go straight to the bundle.
    (tmp_path / "m.ckpt").mkdir()
    (tmp_path / "m.ckpt" / "checkpoint").write_bytes(b"not a checkpoint")
    r = kiln(*train_args(cfg, tmp_path / "x"), "--checkpoint-dir", tmp_path / "m.ckpt",
             check=False)
    assert r.returncode == 2 and "not a kiln checkpoint" in r.stderr
    kiln(*train_args(cfg, tmp_path / "m", "--checkpoint-every", "0"))
    assert (tmp_path / "m.ckpt" / "checkpoint").read_bytes() == b"not a checkpoint"
    assert sorted(os.listdir(tmp_path)) == ["g.yaml", "m", "m.ckpt"]
    assert len(os.listdir(tmp_path / "m" / "logs")) == 1
    r = kiln(*train_args(cfg, tmp_path / "n", "--checkpoint-every", "-1"), check=False)
    assert r.returncode == 2


def test_progress_bar_on_a_terminal_only(kiln, kiln_bin, tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("label: diagnosis\ntask: binary\npositive_class: malignant\n"
                   "model: {type: linear, epochs: 400, batch_size: 4}\n"
                   "training: {threads: 1, eval_every: 50}\n")
    controller, terminal = pty.openpty()
    p = subprocess.Popen([kiln_bin, *train_args(cfg, tmp_path / "m")], stdout=subprocess.PIPE,
                         stderr=terminal, text=True)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert p.wait() == 0
    text = seen.decode()
    # Redrawn in place: carriage return, bar, step count of the known total, rate, loss.
    assert "\rtrain: [" in text or "\r\x1b[Ktrain: [" in text, text[:400]
    rows = int(re.search(r"on (\d+) rows", p.stdout.read()).group(1))
    assert f" of {400 * -(-rows // 4)}, " in text  # epochs x batches per epoch
    assert "steps/s" in text and "loss " in text and "eval auc " in text
    # Not on a pipe.
    r = kiln(*train_args(cfg, tmp_path / "q"))
    assert "train: [" not in r.stderr

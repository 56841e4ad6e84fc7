"""End-to-end: `kiln schedule PIPELINE.yaml`. --next agrees with croniter (the PyPI
package) across zones and DST; a new span directory starts a run; SIGTERM stops the
daemon (and a run in progress) and it exits 0; the pipeline lock refuses a second
`kiln run`; missed fire times are skipped or run once. Pipelines are cheap `command:`
components; every wait is bounded."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

PIPELINE = """\
pipeline: sched
root: runs
metadata: sqlite:meta.sqlite
components:
  - name: work
    kind: command
    command: [{python}, -c, "{code}"]
    cache: false
schedule:
{schedule}"""

# Appends a line to ran.txt in the pipeline directory: one line per run.
APPEND = "open('ran.txt', 'a').write('run\\\\n')"
# Writes its pid, then sleeps until a file named `release` appears (at most 20 s).
BLOCK = ("import os, time; open('started', 'w').write(str(os.getpid())); "
         "[time.sleep(0.05) for _ in range(400) if not os.path.exists('release')]")


def write_pipeline(d, schedule, code=APPEND):
    lines = "".join(f"  {line}\n" for line in schedule.splitlines())
    (d / "pipeline.yaml").write_text(PIPELINE.format(python=sys.executable, code=code,
                                                     schedule=lines))
    return d / "pipeline.yaml"


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_state(d):
    p = d / "runs" / "schedule_state.json"
    return json.loads(p.read_text()) if p.exists() else None


def run_dirs(d):
    runs = d / "runs"
    return sorted(p.name for p in runs.iterdir() if (p / "run.json").exists()) if runs.exists() else []


class Daemon:
    """`kiln schedule` in the background, its stdout in a file."""

    def __init__(self, kiln_bin, d, *args):
        self.out_path = d / "daemon.out"
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([kiln_bin, "schedule", str(d / "pipeline.yaml"), *args],
                                     stdout=self.out, stderr=subprocess.STDOUT, cwd=d)

    def output(self):
        return self.out_path.read_text()

    def stop(self, timeout=10):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


@pytest.fixture
def daemons():
    started = []

    def start(*args):
        d = Daemon(*args)
        started.append(d)
        return d
    yield start
    for d in started:
        d.close()


NEXT_CASES = [
    ("*/15 * * * *", "UTC", "2024-01-01T00:07:30+00:00"),
    ("0 2 * * MON-FRI", "Europe/Berlin", "2024-03-28T12:00:00+01:00"),  # across spring-forward
    ("30 2 * * *", "America/New_York", "2024-03-08T12:00:00-05:00"),  # 02:30 skipped on 03-10
    ("*/30 * * * *", "America/New_York", "2024-03-10T00:45:00-05:00"),
    ("0 0 13 * FRI", "UTC", "2024-01-01T00:00:00+00:00"),  # day-of-month OR day-of-week
    ("0 9 29 2 *", "Asia/Tokyo", "2024-03-01T00:00:00+09:00"),  # Feb 29: leap years only
    ("5/20 8-18 * JAN,jul *", "Australia/Sydney", "2024-06-30T17:00:00+10:00"),
    ("@weekly", "America/Los_Angeles", "2024-10-30T00:00:00-07:00"),  # across fall-back
    ("0 12 1-7 * 1", "Asia/Kolkata", "2024-05-01T00:00:00+05:30"),
]


@pytest.mark.parametrize("expr,zone,after", NEXT_CASES)
def test_next_matches_croniter(kiln, tmp_path, expr, zone, after):
    p = write_pipeline(tmp_path, f'cron: "{expr}"\ntimezone: {zone}')
    got = kiln("schedule", p, "--next", 5, "--after", after).stdout.split()
    it = croniter(expr, datetime.fromisoformat(after).astimezone(ZoneInfo(zone)))
    want = [it.get_next(datetime).isoformat() for _ in range(5)]
    assert got == want


def test_next_fires_a_repeated_hour_once_where_croniter_fires_twice(kiln, tmp_path):
    p = write_pipeline(tmp_path, 'cron: "30 1 * * *"\ntimezone: America/New_York')
    got = kiln("schedule", p, "--next", 3, "--after", "2024-11-02T12:00:00-04:00").stdout.split()
    assert got == ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00",
                   "2024-11-05T01:30:00-05:00"]
    it = croniter("30 1 * * *", datetime.fromisoformat("2024-11-02T12:00:00-04:00")
                  .astimezone(ZoneInfo("America/New_York")))
    theirs = [it.get_next(datetime).isoformat() for _ in range(4)]
    assert theirs == [got[0], "2024-11-03T01:30:00-05:00", *got[1:]]


def test_schedule_errors(kiln, tmp_path):
    p = write_pipeline(tmp_path, 'cron: "0 25 * * *"')
    r = kiln("schedule", p, "--next", 1, check=False)
    assert r.returncode == 2
    assert f"{p}:10: schedule.cron: cron '0 25 * * *': hour: '25' is out of range 0-23" in r.stderr
    (tmp_path / "plain.yaml").write_text(
        "pipeline: x\ncomponents:\n  - {name: a, kind: command, command: [\"true\"]}\n")
    r = kiln("schedule", tmp_path / "plain.yaml", check=False)
    assert r.returncode == 2
    assert "has no schedule: section" in r.stderr


def test_new_span_starts_a_run_and_sigterm_stops(kiln_bin, tmp_path, daemons):
    (tmp_path / "data" / "span-1").mkdir(parents=True)
    (tmp_path / "data" / "span-1" / "a.csv").write_text("x\n1\n")
    write_pipeline(tmp_path, 'new_span: "data/span-{SPAN}"\npoll_seconds: 0.2')
    d = daemons(kiln_bin, tmp_path)
    wait_for(lambda: "newest seen: 1" in d.output(), 10, "the plan")
    assert read_state(tmp_path)["newest_span"] == 1
    time.sleep(0.5)  # a few polls: span 1 is not new
    assert not (tmp_path / "ran.txt").exists()

    (tmp_path / "data" / "span-2").mkdir()
    (tmp_path / "data" / "span-2" / "a.csv").write_text("x\n2\n")
    state = wait_for(lambda: (s := read_state(tmp_path)) and s.get("last_run", {}).get(
        "exit_code") == 0 and s, 15, "a run of span 2")
    assert state["newest_span"] == 2
    assert state["last_run"]["trigger"] == "span 2"
    run_id = state["last_run"]["run_id"]
    assert run_dirs(tmp_path) == [run_id]
    run = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
    assert run["state"] == "succeeded"
    assert (tmp_path / "ran.txt").read_text() == "run\n"

    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
    out = d.output()
    assert f"run {run_id} started (span 2)" in out
    assert f"run {run_id} ended: exit 0 (succeeded)" in out
    assert "stopped by signal 15" in out
    assert (tmp_path / "ran.txt").read_text() == "run\n"  # one run, not one per poll


def test_sigterm_during_a_run_interrupts_it_and_exits_0(kiln_bin, tmp_path, daemons):
    # A missed yearly fire time with run_once: the daemon starts a catch-up run at once.
    write_pipeline(tmp_path, 'cron: "0 0 1 1 *"\nmissed: run_once', code=BLOCK)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "schedule_state.json").write_text(
        json.dumps({"last_fire": "2020-01-01T00:00:00+00:00"}))
    d = daemons(kiln_bin, tmp_path)
    started = wait_for(lambda: (tmp_path / "started").exists() and
                       (tmp_path / "started").read_text(), 15, "the command to start")
    command_pid = int(started)
    t0 = time.monotonic()
    assert d.stop(timeout=15) == 0
    assert time.monotonic() - t0 < 10
    with pytest.raises(ProcessLookupError):
        os.kill(command_pid, 0)  # the component was stopped, not left behind
    state = read_state(tmp_path)
    assert state["last_run"]["exit_code"] == 128 + signal.SIGTERM
    assert state["catch_up"] is False
    run = json.loads((tmp_path / "runs" / state["last_run"]["run_id"] / "run.json").read_text())
    assert run["state"] == "interrupted"
    out = d.output()
    assert "one catch-up run (missed: run_once)" in out
    assert f"ended: exit {128 + signal.SIGTERM} (interrupted)" in out


def test_lock_refuses_a_second_run(kiln, kiln_bin, tmp_path):
    p = write_pipeline(tmp_path, 'cron: "@daily"', code=BLOCK)
    first = subprocess.Popen([kiln_bin, "run", p], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "started").exists(), 15, "the first run")
        second = kiln("run", p, check=False)
        assert second.returncode == 1
        assert (f"kiln run: error: pipeline sched is already running (pid {first.pid} since "
                in second.stderr)
        assert kiln("run", p, "--dry-run").returncode == 0  # no lock needed
        # The scheduler counts a fire time that finds the pipeline running as missed:
        # with run_once it owes a catch-up run, which it starts once the pipeline is free.
        write_pipeline(tmp_path, 'cron: "0 0 1 1 *"\nmissed: run_once', code=BLOCK)
        (tmp_path / "runs" / "schedule_state.json").write_text(
            json.dumps({"last_fire": "2020-01-01T00:00:00+00:00"}))
        busy = kiln("schedule", p, "--once")
        assert "is already running (pid" in busy.stdout
        assert read_state(tmp_path)["catch_up"] is True
        (tmp_path / "release").write_text("")
        assert first.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    again = kiln("schedule", p, "--once")
    assert "started (catch-up for missed fire times)" in again.stdout
    state = read_state(tmp_path)
    assert state["catch_up"] is False and state["last_run"]["exit_code"] == 0
    assert kiln("run", p).returncode == 0  # the lock is free again


def test_a_second_scheduler_is_refused(kiln, kiln_bin, tmp_path, daemons):
    write_pipeline(tmp_path, 'cron: "0 0 1 1 *"')
    d = daemons(kiln_bin, tmp_path)
    wait_for(lambda: "missed fire times: skip" in d.output(), 10, "the plan")
    r = kiln("schedule", tmp_path / "pipeline.yaml", "--once", check=False)
    assert r.returncode == 1
    assert f"pipeline sched is already scheduled (pid {d.proc.pid} since" in r.stderr
    assert d.stop() == 0


@pytest.mark.parametrize("policy", ["skip", "run_once"])
def test_missed_fire_times_policy(kiln, tmp_path, policy):
    p = write_pipeline(tmp_path, f'cron: "0 0 1 1 *"\nmissed: {policy}')
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "schedule_state.json").write_text(
        json.dumps({"last_fire": "2020-01-01T00:00:00+00:00", "newest_span": None}))
    r = kiln("schedule", p, "--once")
    now = datetime.now(timezone.utc)
    missed = now.year - 2020
    assert (f"missed {missed} fire times (2021-01-01T00:00:00+00:00 .. "
            f"{now.year}-01-01T00:00:00+00:00)") in r.stdout
    state = read_state(tmp_path)
    assert state["last_fire"] == f"{now.year}-01-01T00:00:00+00:00"
    assert state["catch_up"] is False
    if policy == "skip":
        assert "skipped (missed: skip)" in r.stdout
        assert run_dirs(tmp_path) == []
        assert "last_run" not in state
    else:
        assert "one catch-up run (missed: run_once)" in r.stdout
        assert run_dirs(tmp_path) == [state["last_run"]["run_id"]]
        assert state["last_run"]["exit_code"] == 0
        assert (tmp_path / "ran.txt").read_text() == "run\n"
    # Handled: a second --once finds nothing due.
    again = kiln("schedule", p, "--once")
    assert "nothing due (--once)" in again.stdout
    assert re.search(r"missed \d+ fire time", again.stdout) is None
    assert len(run_dirs(tmp_path)) == (0 if policy == "skip" else 1)

"""Shared fixtures for the end-to-end tests: the kiln binary under test and helpers to
run it. KILN_BIN is set by ctest; when running pytest by hand it defaults to build/kiln."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def kiln_bin():
    path = os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln"))
    assert os.path.exists(path), f"kiln binary not found at {path}; run `make build`"
    return path


@pytest.fixture
def kiln(kiln_bin):
    """Runs kiln with arguments; returns CompletedProcess (text)."""
    def run(*args, check=True, **kw):
        p = subprocess.run([kiln_bin, *map(str, args)], capture_output=True, text=True,
                           timeout=300, **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"kiln {' '.join(map(str, args))} exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p
    return run


@pytest.fixture(autouse=True)
def kiln_home(tmp_path, monkeypatch):
    """Every test records lineage into its own metadata store, never into ~/.kiln."""
    home = tmp_path / "kiln-home"
    monkeypatch.setenv("KILN_HOME", str(home))
    return home

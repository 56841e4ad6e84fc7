"""`kiln meta` and `kiln lineage` end to end, against a real SQLite store in a temporary
KILN_HOME and a real PostgreSQL server (the ctest fixture "postgres").

The graph is built from the shell with `kiln meta register` / `kiln meta record`, as a user
would for steps run outside kiln: two runs of raw data -> Import -> Examples -> Trainer ->
Model -> Evaluator -> ModelBlessing, differing in span, fingerprint and learning rate. The
second Evaluator also reads the first model as its baseline. Outputs are asserted exactly;
times, which the store sets, are read back from --json and formatted independently here.
"""
import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid

import pytest

EXIT_OK, EXIT_USAGE, EXIT_FINDINGS = 0, 2, 3


# ---------------------------------------------------------------------------------------
# helpers

class Kiln:
    """Runs the kiln binary with KILN_HOME (and HOME) pointing into a temporary dir."""

    def __init__(self, binary, home):
        self.binary = binary
        self.home = str(home)
        self.env = dict(os.environ, KILN_HOME=self.home, HOME=self.home)

    def run(self, *args, expect=EXIT_OK):
        p = subprocess.run([self.binary, *map(str, args)], capture_output=True, text=True,
                           env=self.env, timeout=120)
        assert p.returncode == expect, (
            f"kiln {' '.join(map(str, args))} exited {p.returncode}, expected {expect}\n"
            f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def out(self, *args):
        return self.run(*args).stdout

    def json(self, *args):
        return json.loads(self.run(*args, "--json").stdout)


def iso(ms, with_ms=False):
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    return (s + f".{ms % 1000:03d}Z") if with_ms else s + "Z"


def ids(nodes):
    return [n["id"] for n in nodes]


def record(kiln, *args):
    return json.loads(kiln.out("meta", "record", *args))


def build_run(kiln, run, span, fingerprint, learning_rate, accuracy, baseline=None):
    """One pipeline run; returns the ids it created."""
    raw = int(kiln.out("meta", "register", "RawData", f"/raw/span-{span}",
                       "--property", f"span={span}",
                       "--property", f"fingerprint={fingerprint}").strip())
    common = ["--pipeline", "taxi", "--run", run]
    imp = record(kiln, "Import", "--input", f"raw={raw}",
                 "--output", f"examples=Examples:/d/span-{span}",
                 "--output-property", f"examples.span={span}",
                 "--output-property", f"examples.fingerprint={fingerprint}",
                 "--param", "format=csv", *common)
    examples = imp["outputs"]["examples"]
    train = record(kiln, "Trainer", "--input", f"examples=a{examples}",
                   "--output", f"model=Model:/m/{span}",
                   "--output-property", f"model.accuracy={accuracy}",
                   "--param", f"learning_rate={learning_rate}", "--param", "epochs=3",
                   "--name", f"train-{span}", *common)
    model = train["outputs"]["model"]
    inputs = ["--input", f"model=artifact:{model}"]
    if baseline:
        inputs += ["--input", f"baseline_model={baseline}"]
    ev = record(kiln, "Evaluator", *inputs, "--output", f"blessing=ModelBlessing:/b/{span}",
                "--output-property", "blessing.blessed=true", "--param", "threshold=0.9",
                *common)
    return {"raw": raw, "import": imp["execution_id"], "examples": examples,
            "trainer": train["execution_id"], "model": model,
            "evaluator": ev["execution_id"], "blessing": ev["outputs"]["blessing"]}


@pytest.fixture(scope="module")
def graph(kiln_bin, tmp_path_factory):
    kiln = Kiln(kiln_bin, tmp_path_factory.mktemp("kiln_home"))
    r1 = build_run(kiln, "run-1", 1, "sha256:aaa", 0.1, 0.91)
    time.sleep(0.02)  # run 2 starts in a later millisecond: --since / --until split them
    r2 = build_run(kiln, "run-2", 2, "sha256:bbb", 0.2, 0.93, baseline=r1["model"])
    return kiln, r1, r2


def test_graph_ids_are_assigned_in_order(graph):
    _, r1, r2 = graph
    assert r1 == {"raw": 1, "import": 1, "examples": 2, "trainer": 2, "model": 3,
                  "evaluator": 3, "blessing": 4}
    assert r2 == {"raw": 5, "import": 4, "examples": 6, "trainer": 5, "model": 7,
                  "evaluator": 6, "blessing": 8}


def test_record_prints_execution_and_output_ids(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path)
    assert kiln.out("meta", "register", "RawData", "/raw/x") == "1\n"
    out = kiln.out("meta", "record", "Import", "--input", "raw=1", "--output",
                   "examples=Examples:s3://bucket/ex:1", "--output", "stats=Stats:/s")
    assert json.loads(out) == {"execution_id": 1, "outputs": {"examples": 2, "stats": 3}}
    # The URI is everything after the first ':' following the type.
    assert kiln.json("meta", "show", "2")["artifact"]["uri"] == "s3://bucket/ex:1"


def test_register_reuses_identical_external_data(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path)
    args = ["meta", "register", "RawData", "/raw/a", "--property", "span=1"]
    assert kiln.out(*args) == "1\n"
    assert kiln.out(*args) == "1\n"
    assert kiln.out("meta", "register", "RawData", "/raw/a", "--property", "span=2") == "2\n"
    assert kiln.out("meta", "register", "RawData", "/raw/a", "--property", "span=1",
                    "--name", "first") == "3\n"


# ---------------------------------------------------------------------------------------
# ls

def test_ls_artifacts_table(graph):
    kiln, _, _ = graph
    nodes = kiln.json("meta", "ls", "artifacts")
    assert [(n["id"], n["type"], n["uri"]) for n in nodes] == [
        (1, "RawData", "/raw/span-1"), (2, "Examples", "/d/span-1"), (3, "Model", "/m/1"),
        (4, "ModelBlessing", "/b/1"), (5, "RawData", "/raw/span-2"),
        (6, "Examples", "/d/span-2"), (7, "Model", "/m/2"), (8, "ModelBlessing", "/b/2")]
    expected = ["ID  TYPE           NAME  URI          CREATED"]
    for n in nodes:
        expected.append(f"{n['id']:<2}  {n['type']:<13}  -     {n['uri']:<11}  "
                        f"{iso(n['create_time_ms'])}")
    assert kiln.out("meta", "ls", "artifacts").splitlines() == expected


def test_ls_executions_and_contexts_tables(graph):
    kiln, _, _ = graph
    execs = kiln.json("meta", "ls", "executions", "--type", "Trainer")
    assert kiln.out("meta", "ls", "executions", "--type", "Trainer").splitlines() == [
        "ID  TYPE     NAME     STATE     CREATED",
        f"2   Trainer  train-1  COMPLETE  {iso(execs[0]['create_time_ms'])}",
        f"5   Trainer  train-2  COMPLETE  {iso(execs[1]['create_time_ms'])}",
    ]
    contexts = kiln.json("meta", "ls", "contexts")
    assert [(c["id"], c["type"], c["name"]) for c in contexts] == [
        (1, "pipeline", "taxi"), (2, "component", "taxi.Import"), (3, "pipeline_run", "run-1"),
        (4, "component", "taxi.Trainer"), (5, "component", "taxi.Evaluator"),
        (6, "pipeline_run", "run-2")]
    lines = kiln.out("meta", "ls", "contexts", "--type", "pipeline_run").splitlines()
    assert lines == [
        "ID  TYPE          NAME   CREATED",
        f"3   pipeline_run  run-1  {iso(contexts[2]['create_time_ms'])}",
        f"6   pipeline_run  run-2  {iso(contexts[5]['create_time_ms'])}",
    ]


def test_ls_json_has_every_field(graph):
    kiln, _, _ = graph
    [model] = kiln.json("meta", "ls", "artifacts", "--uri", "/m/2")
    assert list(model) == ["id", "type", "name", "uri", "state", "properties",
                           "custom_properties", "create_time_ms", "create_time",
                           "update_time_ms", "update_time"]
    assert model["id"] == 7 and model["type"] == "Model" and model["name"] is None
    assert model["state"] == "LIVE"
    assert model["properties"] == {"accuracy": 0.93}
    assert model["custom_properties"] == {}
    assert model["create_time"] == iso(model["create_time_ms"], with_ms=True)
    [trainer] = kiln.json("meta", "ls", "executions", "--name", "train-2")
    assert trainer["id"] == 5 and trainer["state"] == "COMPLETE"
    params = {k: v for k, v in trainer["custom_properties"].items()
              if not k.startswith("env.") and k not in ("git_sha", "kiln_version")}
    # int64 and double parameters stay JSON numbers.
    assert params == {"epochs": 3, "learning_rate": 0.2}
    assert isinstance(params["epochs"], int)


def test_ls_filters(graph):
    kiln, r1, r2 = graph
    ls = lambda *a: ids(kiln.json("meta", "ls", *a))  # noqa: E731
    assert ls("artifacts", "--type", "Model") == [3, 7]
    assert ls("artifacts", "--type", "NoSuchType") == []
    assert ls("artifacts", "--property", "span=2") == [5, 6]
    assert ls("artifacts", "--property", "span:string=2") == []  # stored as INT
    assert ls("artifacts", "--property", "fingerprint=sha256:aaa") == [1, 2]
    assert ls("artifacts", "--property", "blessed=true") == [4, 8]
    assert ls("artifacts", "--property", "accuracy=0.91") == [3]
    assert ls("executions", "--property", "learning_rate=0.2") == [5]
    assert ls("executions", "--property", "format=csv") == [1, 4]
    assert ls("artifacts", "--uri", "/m/1") == [3]
    assert ls("executions", "--name", "train-1") == [2]
    # Inputs are attributed to the run too: run-2 holds the baseline model of run 1.
    assert ls("artifacts", "--context", "c6") == [3, 5, 6, 7, 8]
    assert ls("artifacts", "--context", "6") == [3, 5, 6, 7, 8]
    assert ls("executions", "--context", "context:3") == [1, 2, 3]
    assert ls("executions", "--context", "c5") == [3, 6]
    assert ls("artifacts", "--limit", "2") == [1, 2]
    assert ls("artifacts", "--newest-first", "--limit", "2") == [8, 7]
    assert ls("artifacts", "--type", "Model", "--newest-first") == [7, 3]
    assert ls("artifacts", "--type", "Examples", "--property", "span=1") == [2]


def test_ls_since_until(graph):
    kiln, _, r2 = graph
    raw2 = kiln.json("meta", "show", str(r2["raw"]))["artifact"]
    split_ms = raw2["create_time_ms"]
    ls = lambda *a: ids(kiln.json("meta", "ls", "artifacts", *a))  # noqa: E731
    assert ls("--since", split_ms) == [5, 6, 7, 8]
    assert ls("--until", split_ms) == [1, 2, 3, 4]
    assert ls("--since", raw2["create_time"]) == [5, 6, 7, 8]
    # The same instant written with an offset.
    t = datetime.datetime.fromtimestamp(split_ms / 1000, tz=datetime.timezone(
        datetime.timedelta(hours=2)))
    assert ls("--since", t.isoformat(timespec="milliseconds")) == [5, 6, 7, 8]
    assert ls("--since", "2000-01-01") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert ls("--until", "2000-01-01") == []
    assert ls("--since", "2000-01-01T00:00:00Z", "--until", split_ms, "--type", "Model") == [3]
    assert kiln.out("meta", "ls", "artifacts", "--until", "2000-01-01") == "no artifacts found\n"
    p = kiln.run("meta", "ls", "artifacts", "--since", "2026-02-30", expect=EXIT_USAGE)
    assert p.stderr == (
        "kiln meta: error: --since '2026-02-30': expected an ISO-8601 date or time "
        "(2026-11-25, 2026-11-25T10:00:00Z, 2026-11-25T12:00:00+02:00) or milliseconds since "
        "the epoch\n")
    assert p.stdout == ""


def test_ls_flag_errors(graph):
    kiln, _, _ = graph
    p = kiln.run("meta", "ls", "artifacts", "--property", "span", expect=EXIT_USAGE)
    assert p.stderr == ("kiln meta: error: --property 'span': expected KEY=VALUE "
                        "(KEY:string=VALUE keeps a number as text)\n")
    p = kiln.run("meta", "ls", "artifacts", "--property", "=2", expect=EXIT_USAGE)
    assert p.stderr == "kiln meta: error: --property '=2': the key is empty; expected KEY=VALUE\n"
    p = kiln.run("meta", "ls", "artifacts", "--property", "span:int=two", expect=EXIT_USAGE)
    assert p.stderr == ("kiln meta: error: --property 'span:int=two': 'two' is not a 64-bit "
                        "integer\n")
    p = kiln.run("meta", "ls", "executions", "--uri", "/m/1", expect=EXIT_USAGE)
    assert p.stderr == "kiln meta: error: --uri applies to artifacts only, not executions\n"
    p = kiln.run("meta", "ls", "contexts", "--context", "3", expect=EXIT_USAGE)
    assert p.stderr == "kiln meta: error: --context applies to artifacts and executions\n"
    p = kiln.run("meta", "ls", "artifacts", "--context", "e3", expect=EXIT_USAGE)
    assert p.stderr == ("kiln meta: error: --context 'e3': expected a context id (3, c3 or "
                        "context:3)\n")
    kiln.run("meta", "ls", "models", expect=EXIT_USAGE)
    kiln.run("meta", "ls", "artifacts", "--limit", "0", expect=EXIT_USAGE)
    p = kiln.run("meta", "frobnicate", expect=EXIT_USAGE)
    assert p.stderr == ("kiln meta: unknown command 'frobnicate'; commands: ls, show, types, "
                        "record, register, diff (see kiln meta --help)\n")


# ---------------------------------------------------------------------------------------
# show and types

def test_show_artifact(graph):
    kiln, _, _ = graph
    j = kiln.json("meta", "show", "7")
    a = j["artifact"]
    trainer = kiln.json("meta", "show", "e5")["execution"]
    evaluator = kiln.json("meta", "show", "e6")["execution"]
    assert kiln.out("meta", "show", "7").splitlines() == [
        "artifact 7",
        "  type: Model",
        "  uri: /m/2",
        "  state: LIVE",
        f"  created: {a['create_time']}",
        f"  updated: {a['update_time']}",
        "  properties:",
        "    accuracy = 0.93",
        "  contexts:",
        "    context 1 pipeline taxi",
        "    context 4 component taxi.Trainer",
        "    context 5 component taxi.Evaluator",
        "    context 6 pipeline_run run-2",
        "  made by:",
        f"    execution 5 Trainer as model (COMPLETE, {iso(trainer['create_time_ms'])})",
        "  used by:",
        f"    execution 6 Evaluator as model (COMPLETE, {iso(evaluator['create_time_ms'])})",
    ]
    assert j["contexts"] == [
        {"id": 1, "type": "pipeline", "name": "taxi"},
        {"id": 4, "type": "component", "name": "taxi.Trainer"},
        {"id": 5, "type": "component", "name": "taxi.Evaluator"},
        {"id": 6, "type": "pipeline_run", "name": "run-2"}]
    assert j["produced_by"] == [{"role": "model", "execution": {
        "id": 5, "type": "Trainer", "name": "train-2", "state": "COMPLETE"}}]
    assert j["used_by"] == [{"role": "model", "execution": {
        "id": 6, "type": "Evaluator", "name": None, "state": "COMPLETE"}}]
    # The same node under every id spelling.
    for spelling in ("a7", "artifact:7"):
        assert kiln.json("meta", "show", spelling) == j
    # Model 3 is run 2's baseline as well as run 1's evaluated model.
    used = kiln.json("meta", "show", "3")["used_by"]
    assert [(u["role"], u["execution"]["id"]) for u in used] == [("model", 3),
                                                                 ("baseline_model", 6)]


def test_show_registered_artifact_has_no_producer(graph):
    kiln, _, _ = graph
    lines = kiln.out("meta", "show", "1").splitlines()
    assert lines[lines.index("  made by: (none)") + 1].startswith("  used by:")
    assert "    fingerprint = \"sha256:aaa\"" in lines  # strings quoted, ints not
    assert "    span = 1" in lines


def test_show_execution(graph):
    kiln, _, _ = graph
    j = kiln.json("meta", "show", "e6")
    e = j["execution"]
    assert e["id"] == 6 and e["type"] == "Evaluator" and e["state"] == "COMPLETE"
    assert j["inputs"] == [
        {"role": "baseline_model",
         "artifact": {"id": 3, "type": "Model", "name": None, "uri": "/m/1"}},
        {"role": "model", "artifact": {"id": 7, "type": "Model", "name": None, "uri": "/m/2"}}]
    assert j["outputs"] == [
        {"role": "blessing",
         "artifact": {"id": 8, "type": "ModelBlessing", "name": None, "uri": "/b/2"}}]
    assert ids(j["contexts"]) == [1, 5, 6]
    custom = e["custom_properties"]
    assert custom["threshold"] == 0.9 and custom["kiln_version"]
    expected = ["execution 6", "  type: Evaluator", "  state: COMPLETE",
                f"  created: {e['create_time']}", f"  updated: {e['update_time']}",
                "  custom properties:"]
    expected += [f"    {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in custom.items()]
    expected += ["  contexts:", "    context 1 pipeline taxi",
                 "    context 5 component taxi.Evaluator", "    context 6 pipeline_run run-2",
                 "  inputs:", "    baseline_model <- artifact 3 Model /m/1",
                 "    model <- artifact 7 Model /m/2",
                 "  outputs:", "    blessing -> artifact 8 ModelBlessing /b/2"]
    assert kiln.out("meta", "show", "execution:6").splitlines() == expected


def test_show_context(graph):
    kiln, _, _ = graph
    j = kiln.json("meta", "show", "c3")
    assert j["context"]["name"] == "run-1" and j["context"]["type"] == "pipeline_run"
    assert ids(j["executions"]) == [1, 2, 3]
    assert ids(j["artifacts"]) == [1, 2, 3, 4]
    execs = {e["id"]: e for e in kiln.json("meta", "ls", "executions")}
    c = j["context"]
    assert kiln.out("meta", "show", "context:3").splitlines() == [
        "context 3", "  type: pipeline_run", "  name: run-1",
        f"  created: {c['create_time']}", f"  updated: {c['update_time']}",
        "  executions:",
        f"    execution 1 Import (COMPLETE, {iso(execs[1]['create_time_ms'])})",
        f"    execution 2 Trainer (COMPLETE, {iso(execs[2]['create_time_ms'])})",
        f"    execution 3 Evaluator (COMPLETE, {iso(execs[3]['create_time_ms'])})",
        "  artifacts:",
        "    artifact 1 RawData /raw/span-1", "    artifact 2 Examples /d/span-1",
        "    artifact 3 Model /m/1", "    artifact 4 ModelBlessing /b/1"]


@pytest.mark.parametrize("ref,message", [
    ("12", "no artifact with id 12"), ("a12", "no artifact with id 12"),
    ("e12", "no execution with id 12"), ("context:12", "no context with id 12"),
])
def test_show_unknown_id(graph, ref, message):
    kiln, _, _ = graph
    p = kiln.run("meta", "show", ref, expect=EXIT_USAGE)
    assert p.stderr == f"kiln meta: error: {message}\n" and p.stdout == ""


@pytest.mark.parametrize("ref", ["x1", "a", "-3", "0", "e1.5", "artifact:", "model:3"])
def test_show_bad_id(graph, ref):
    kiln, _, _ = graph
    p = kiln.run("meta", "show", "--", ref, expect=EXIT_USAGE)
    assert p.stderr == (f"kiln meta: error: bad id '{ref}': expected a number (an artifact "
                        "id), a12 / e5 / c3, or artifact:12 / execution:5 / context:3\n")


def test_types(graph):
    kiln, _, _ = graph
    types = kiln.json("meta", "types")
    by = {(t["kind"], t["name"]): t["properties"] for t in types}
    assert by == {
        ("artifact", "Examples"): {"fingerprint": "STRING", "span": "INT"},
        ("artifact", "Model"): {"accuracy": "DOUBLE"},
        ("artifact", "ModelBlessing"): {"blessed": "BOOLEAN"},
        ("artifact", "RawData"): {"fingerprint": "STRING", "span": "INT"},
        ("execution", "Evaluator"): {}, ("execution", "Import"): {},
        ("execution", "Trainer"): {},
        ("context", "component"): {}, ("context", "pipeline"): {},
        ("context", "pipeline_run"): {},
    }
    lines = kiln.out("meta", "types").splitlines()
    assert lines[0].split() == ["KIND", "ID", "NAME", "PROPERTIES"]
    rows = [line.split(maxsplit=3) for line in lines[1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("artifact", "Examples", "fingerprint:STRING span:INT"),
        ("artifact", "Model", "accuracy:DOUBLE"),
        ("artifact", "ModelBlessing", "blessed:BOOLEAN"),
        ("artifact", "RawData", "fingerprint:STRING span:INT"),
        ("execution", "Evaluator", "-"), ("execution", "Import", "-"),
        ("execution", "Trainer", "-"),
        ("context", "component", "-"), ("context", "pipeline", "-"),
        ("context", "pipeline_run", "-")]


# ---------------------------------------------------------------------------------------
# lineage

def lineage(kiln, *args):
    g = json.loads(kiln.out("lineage", *args, "--format", "json"))
    events = sorted((e["type"], e["artifact_id"], e["execution_id"], e["role"])
                    for e in g["events"])
    return ids(g["artifacts"]), ids(g["executions"]), events


def test_lineage_json_upstream_by_depth(graph):
    kiln, _, _ = graph
    assert lineage(kiln, "7", "--direction", "up", "--depth", "0") == ([7], [], [])
    assert lineage(kiln, "7", "--direction", "up", "--depth", "1") == (
        [6, 7], [5], [("INPUT", 6, 5, "examples"), ("OUTPUT", 7, 5, "model")])
    assert lineage(kiln, "7", "--direction", "up", "--depth", "2") == (
        [5, 6, 7], [4, 5],
        [("INPUT", 5, 4, "raw"), ("INPUT", 6, 5, "examples"), ("OUTPUT", 6, 4, "examples"),
         ("OUTPUT", 7, 5, "model")])
    # Nothing further up: depth 5 gives the same graph.
    assert lineage(kiln, "7", "--direction", "up") == lineage(kiln, "7", "--direction", "up",
                                                              "--depth", "2")


def test_lineage_json_downstream_and_both(graph):
    kiln, _, _ = graph
    assert lineage(kiln, "3", "--direction", "down", "--depth", "1") == (
        [3, 4, 8], [3, 6],
        [("INPUT", 3, 3, "model"), ("INPUT", 3, 6, "baseline_model"),
         ("OUTPUT", 4, 3, "blessing"), ("OUTPUT", 8, 6, "blessing")])
    assert lineage(kiln, "1", "--direction", "down", "--depth", "1") == (
        [1, 2], [1], [("INPUT", 1, 1, "raw"), ("OUTPUT", 2, 1, "examples")])
    assert lineage(kiln, "1", "--direction", "down", "--depth", "2")[:2] == ([1, 2, 3], [1, 2])
    arts, execs, _ = lineage(kiln, "a3")
    assert (arts, execs) == ([1, 2, 3, 4, 8], [1, 2, 3, 6])
    g = json.loads(kiln.out("lineage", "3", "--format", "json"))
    assert (g["root"], g["depth"], g["direction"]) == (3, 5, "both")
    assert g["artifacts"][2]["properties"] == {"accuracy": 0.91}


def test_lineage_text(graph):
    kiln, _, _ = graph
    t = {e["id"]: iso(e["create_time_ms"]) for e in kiln.json("meta", "ls", "executions")}
    assert kiln.out("lineage", "7").splitlines() == [
        "artifact 7 Model /m/2  [accuracy=0.93]",
        f"  made by execution 5 Trainer as model (COMPLETE, {t[5]})  "
        "[name=train-2 epochs=3 learning_rate=0.2]",
        "    examples <- artifact 6 Examples /d/span-2  [fingerprint=sha256:bbb span=2]",
        f"      made by execution 4 Import as examples (COMPLETE, {t[4]})  [format=csv]",
        "        raw <- artifact 5 RawData /raw/span-2  [fingerprint=sha256:bbb span=2]",
        f"  used by execution 6 Evaluator as model (COMPLETE, {t[6]})  [threshold=0.9]",
        "    blessing -> artifact 8 ModelBlessing /b/2  [blessed=true]",
    ]
    assert kiln.out("lineage", "3", "--direction", "down").splitlines() == [
        "artifact 3 Model /m/1  [accuracy=0.91]",
        f"  used by execution 3 Evaluator as model (COMPLETE, {t[3]})  [threshold=0.9]",
        "    blessing -> artifact 4 ModelBlessing /b/1  [blessed=true]",
        f"  used by execution 6 Evaluator as baseline_model (COMPLETE, {t[6]})  "
        "[threshold=0.9]",
        "    blessing -> artifact 8 ModelBlessing /b/2  [blessed=true]",
    ]
    # The depth limit is announced, not silent.
    assert kiln.out("lineage", "7", "--depth", "1").splitlines() == [
        "artifact 7 Model /m/2  [accuracy=0.93]",
        f"  made by execution 5 Trainer as model (COMPLETE, {t[5]})  "
        "[name=train-2 epochs=3 learning_rate=0.2]",
        "    examples <- artifact 6 Examples /d/span-2  [fingerprint=sha256:bbb span=2]",
        "      ... made by 1 more execution beyond --depth 1",
        f"  used by execution 6 Evaluator as model (COMPLETE, {t[6]})  [threshold=0.9]",
        "    blessing -> artifact 8 ModelBlessing /b/2  [blessed=true]",
    ]
    assert kiln.out("lineage", "5", "--depth", "0").splitlines() == [
        "artifact 5 RawData /raw/span-2  [fingerprint=sha256:bbb span=2]",
        "  made by no recorded execution",
        "  ... used by 1 more execution beyond --depth 0",
    ]
    assert kiln.out("lineage", "8", "--direction", "down").splitlines() == [
        "artifact 8 ModelBlessing /b/2  [blessed=true]",
        "  used by no recorded execution",
    ]


def check_dot(text):
    """A structural check of Graphviz output, and a real `dot` run when installed."""
    assert text.startswith("digraph lineage {\n") and text.endswith("}\n")
    body = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # blank out quoted strings
    assert body.count("{") == body.count("}") == 1
    assert body.count("[") == body.count("]")
    declared, edges = set(), []
    for line in text.splitlines()[1:-1]:
        m = re.fullmatch(r'  "(\w+)" -> "(\w+)" \[label=("(?:[^"\\]|\\.)*")\];', line)
        if m:
            edges.append((m.group(1), m.group(2), json.loads(m.group(3))))
            continue
        m = re.fullmatch(r'  "(\w+)" \[shape=(box|ellipse), .*label="(?:[^"\\]|\\.)*"\];', line)
        if m:
            declared.add(m.group(1))
            continue
        assert re.fullmatch(r"  (rankdir=LR|node \[.*\]|edge \[.*\]);", line), line
    for a, b, _ in edges:
        assert a in declared and b in declared, (a, b)
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=text, text=True, check=True,
                       capture_output=True)
    return declared, edges


def test_lineage_dot(graph):
    kiln, _, _ = graph
    text = kiln.out("lineage", "3", "--format", "dot")
    declared, edges = check_dot(text)
    assert declared == {"a1", "a2", "a3", "a4", "a8", "e1", "e2", "e3", "e6"}
    assert sorted(edges) == sorted([
        ("a1", "e1", "raw"), ("e1", "a2", "examples"), ("a2", "e2", "examples"),
        ("e2", "a3", "model"), ("a3", "e3", "model"), ("e3", "a4", "blessing"),
        ("a3", "e6", "baseline_model"), ("e6", "a8", "blessing")])
    assert '  "a3" [shape=box, style="rounded,bold", label="artifact 3\\nModel\\n/m/1"];' in text
    assert ('  "e2" [shape=ellipse, style=filled, fillcolor="#e8e8e8", '
            'label="execution 2\\nTrainer\\nCOMPLETE"];') in text


@pytest.mark.parametrize("args,message", [
    (["99"], "kiln lineage: error: no artifact with id 99\n"),
    (["e5"], "kiln lineage: error: 'e5' is execution 5, not an artifact; lineage starts from "
             "an artifact (`kiln meta show` lists an execution's inputs and outputs)\n"),
    (["7x"], "kiln lineage: error: bad id '7x': expected a number (an artifact id), a12 / e5 "
             "/ c3, or artifact:12 / execution:5 / context:3\n"),
])
def test_lineage_errors(graph, args, message):
    kiln, _, _ = graph
    assert kiln.run("lineage", *args, expect=EXIT_USAGE).stderr == message


def test_lineage_flag_checks(graph):
    kiln, _, _ = graph
    kiln.run("lineage", "7", "--format", "svg", expect=EXIT_USAGE)
    kiln.run("lineage", "7", "--direction", "sideways", expect=EXIT_USAGE)
    kiln.run("lineage", "7", "--depth", "-1", expect=EXIT_USAGE)


# ---------------------------------------------------------------------------------------
# diff

def env_keys(kiln, execution):
    custom = kiln.json("meta", "show", f"e{execution}")["execution"]["custom_properties"]
    return sorted(k for k in custom if k.startswith("env."))


def test_diff_models(graph):
    kiln, _, _ = graph
    p = kiln.run("meta", "diff", "3", "7", expect=EXIT_FINDINGS)
    # Facts of each model: model type + accuracy, component + 2 parameters, kiln_version
    # + git_sha, env.*, and uri + span + fingerprint of examples and of examples/raw.
    facts = 2 + 3 + 2 + len(env_keys(kiln, 2)) + 6
    assert p.stdout.splitlines() == [
        "artifact 3 -> artifact 7: 8 differences",
        "input",
        "  examples.fingerprint: sha256:aaa -> sha256:bbb",
        "  examples.span: 1 -> 2",
        "  examples.uri: /d/span-1 -> /d/span-2",
        "  examples/raw.fingerprint: sha256:aaa -> sha256:bbb",
        "  examples/raw.span: 1 -> 2",
        "  examples/raw.uri: /raw/span-1 -> /raw/span-2",
        "parameter",
        "  learning_rate: 0.1 -> 0.2",
        "model",
        "  accuracy: 0.91 -> 0.93",
        f"{facts - 8} facts equal",
    ]
    j = json.loads(kiln.run("meta", "diff", "a3", "artifact:7", "--json",
                            expect=EXIT_FINDINGS).stdout)
    assert (j["a"], j["b"], j["same"]) == (3, 7, facts - 8)
    assert {"category": "parameter", "key": "learning_rate", "a": "0.1", "b": "0.2"} in \
        j["differences"]
    assert len(j["differences"]) == 8
    p = kiln.run("meta", "diff", "7", "7")
    assert p.stdout == f"artifact 7 -> artifact 7: no differences\n{facts} facts equal\n"
    assert json.loads(kiln.out("meta", "diff", "7", "7", "--json"))["differences"] == []


def test_diff_absent_keys(graph):
    kiln, _, _ = graph
    # A blessing against a model: different producers, parameters and inputs.
    p = kiln.run("meta", "diff", "4", "3", expect=EXIT_FINDINGS)
    lines = p.stdout.splitlines()
    assert "  model.uri: /m/1 -> (absent)" in lines
    assert "  examples.uri: (absent) -> /d/span-1" in lines
    assert "  threshold: 0.9 -> (absent)" in lines
    assert "  component: Evaluator -> Trainer" in lines
    assert "  blessed: true -> (absent)" in lines
    assert "  type: ModelBlessing -> Model" in lines


@pytest.mark.parametrize("args,message", [
    (["3", "99"], "kiln meta: error: no artifact with id 99\n"),
    (["e2", "3"], "kiln meta: error: 'e2' is execution 2, not an artifact; diff compares two "
                  "model artifacts\n"),
])
def test_diff_errors(graph, args, message):
    kiln, _, _ = graph
    assert kiln.run("meta", "diff", *args, expect=EXIT_USAGE).stderr == message


# ---------------------------------------------------------------------------------------
# record errors and hostile strings

@pytest.mark.parametrize("args,message", [
    (["--param", "lr"], "--param 'lr': expected KEY=VALUE (KEY:string=VALUE keeps a number "
                        "as text)"),
    (["--param", "lr:double=fast"], "--param 'lr:double=fast': 'fast' is not a finite number"),
    (["--param", "ok:bool=yes"], "--param 'ok:bool=yes': 'yes' is not true or false"),
    (["--input", "examples"], "--input 'examples': expected ROLE=ARTIFACT_ID, e.g. examples=3"),
    (["--input", "examples=e1"], "--input 'examples=e1': 'e1' is execution 1, not an "
                                 "artifact; an input is an artifact"),
    (["--input", "examples=99"], "no artifact with id 99"),
    (["--output", "model=/m/9"], "--output 'model=/m/9': expected ROLE=ARTIFACT_TYPE:URI, "
                                 "e.g. model=Model:/models/7"),
    (["--output", "m=Model:/a", "--output", "m=Model:/b"], "--output role 'm' is given twice"),
    (["--output", "m=Model:/a", "--output-property", "x.k=1"],
     "--output-property 'x.k=1': no --output has the role 'x'"),
    (["--output", "m=Model:/a", "--output-property", "k=1"],
     "--output-property 'k=1': expected ROLE.KEY=VALUE, e.g. examples.span=42"),
    (["--output", "m=Model:/a", "--output-property", "m.accuracy=high"],
     "artifact type 'Model': property 'accuracy' was first recorded as DOUBLE, now given a "
     "STRING"),
    (["--state", "DONE"], "--state 'DONE': unknown execution state 'DONE'; one of: UNKNOWN, "
                          "NEW, RUNNING, COMPLETE, FAILED, CACHED, CANCELED"),
    (["--run", "r9"], "--run needs --pipeline"),
])
def test_record_errors(graph, args, message):
    kiln, _, _ = graph
    before = kiln.json("meta", "ls", "executions")
    p = kiln.run("meta", "record", "Trainer", *args, expect=EXIT_USAGE)
    assert p.stderr == f"kiln meta: error: {message}\n"
    assert p.stdout == ""
    assert kiln.json("meta", "ls", "executions") == before  # nothing half-recorded


HOSTILE = ["it's \"quoted\"; DROP TABLE artifacts; --", "ünïcödé ✓ 模型", "tab\there\nnewline",
           "back\\slash", "' OR '1'='1", "[brackets] {braces}", ""]


def test_hostile_strings_round_trip(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path)
    params = []
    for i, s in enumerate(HOSTILE):
        params += ["--param", f"p{i}={s}"]
    uri = 'file:///tmp/a "b"; c\\d/ü'
    raw = int(kiln.out("meta", "register", "Raw Data", uri, "--property",
                       f"note={HOSTILE[0]}").strip())
    rec = record(kiln, "Step", "--input", f"in put={raw}", *params, "--param",
                 "num:string=007", "--output", f"out=Out \"type\":{uri}/out",
                 "--output-property", f"out.label={HOSTILE[1]}", "--pipeline", "p'; --",
                 "--run", "r\"1")
    e = kiln.json("meta", "show", f"e{rec['execution_id']}")
    custom = e["execution"]["custom_properties"]
    for i, s in enumerate(HOSTILE):
        assert custom[f"p{i}"] == s
    assert custom["num"] == "007"
    assert e["inputs"] == [{"role": "in put", "artifact": {
        "id": raw, "type": "Raw Data", "name": None, "uri": uri}}]
    out = kiln.json("meta", "show", str(rec["outputs"]["out"]))["artifact"]
    assert (out["type"], out["uri"], out["properties"]) == (
        'Out "type"', uri + "/out", {"label": HOSTILE[1]})
    assert sorted(c["name"] for c in e["contexts"]) == ["p'; --", "p'; --.Step", 'r"1']
    assert ids(kiln.json("meta", "ls", "executions", "--property", f"p0={HOSTILE[0]}")) == [
        rec["execution_id"]]
    # Text output quotes what is not one plain word, so every record stays on one line.
    text = kiln.out("meta", "show", f"e{rec['execution_id']}").splitlines()
    assert '    p2 = "tab\\there\\nnewline"' in text
    assert '    "in put" <- artifact 1 "Raw Data" "file:///tmp/a \\"b\\"; c\\\\d/ü"' in text
    lineage_text = kiln.out("lineage", str(rec["outputs"]["out"])).splitlines()
    assert lineage_text[0] == ('artifact 2 "Out \\"type\\"" "file:///tmp/a \\"b\\"; c\\\\d/ü/out"'
                               '  [label="ünïcödé ✓ 模型"]')
    declared, edges = check_dot(kiln.out("lineage", "1", "--format", "dot"))
    assert ("a1", "e1", "in put") in edges


# ---------------------------------------------------------------------------------------
# int64 edges, and stores written by other tools

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def test_int64_values_are_exact_and_overflow_is_refused(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path)
    big = ["--property", f"max={INT64_MAX}", "--property", f"min={INT64_MIN}",
           "--property", f"p53={2**53 + 1}"]
    assert kiln.out("meta", "register", "RawData", "/raw", *big) == "1\n"
    a = kiln.json("meta", "show", "1")["artifact"]
    # JSON integers, not doubles: 2^53 + 1 and the int64 ends survive to the digit.
    assert a["properties"] == {"max": INT64_MAX, "min": INT64_MIN, "p53": 2**53 + 1}
    assert f"    max = {INT64_MAX}" in kiln.out("meta", "show", "1").splitlines()
    assert ids(kiln.json("meta", "ls", "artifacts", "--property", f"min={INT64_MIN}")) == [1]
    assert ids(kiln.json("meta", "ls", "artifacts", "--property", f"p53={2**53}")) == []
    # One past either end is not silently rounded to a double.
    for value in (INT64_MAX + 1, INT64_MIN - 1, 10**30):
        for args in (["meta", "register", "RawData", "/raw2", "--property", f"n={value}"],
                     ["meta", "record", "Step", "--param", f"n={value}"],
                     ["meta", "ls", "artifacts", "--property", f"n={value}"]):
            flag = args[-2]
            p = kiln.run(*args, expect=EXIT_USAGE)
            assert p.stderr == (
                f"kiln meta: error: {flag} 'n={value}': '{value}' is outside the 64-bit integer "
                "range; KEY:string=VALUE keeps it as text, KEY:double=VALUE rounds it to a "
                "double\n"), p.stderr
    assert ids(kiln.json("meta", "ls", "artifacts")) == [1]
    assert kiln.json("meta", "ls", "executions") == []
    # Asked for explicitly, both still work.
    assert kiln.out("meta", "register", "RawData", "/raw3", "--property",
                    f"s:string={INT64_MAX + 1}", "--property", f"d:double={INT64_MAX + 1}") == "2\n"
    assert kiln.json("meta", "show", "2")["artifact"]["properties"] == {
        "s": str(INT64_MAX + 1), "d": float(INT64_MAX + 1)}


def iso_any(ms):
    """iso(ms, with_ms=True) for any int64: whole 400-year cycles (146097 days) move the
    date into datetime's range and back."""
    days, rest = divmod(ms, 86400000)
    cycles = days // 146097
    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=days - cycles * 146097)
    return (f"{d.year + 400 * cycles:04d}-{d.month:02d}-{d.day:02d}T{rest // 3600000:02d}:"
            f"{rest // 60000 % 60:02d}:{rest // 1000 % 60:02d}.{rest % 1000:03d}Z")


@pytest.mark.parametrize("created,updated", [
    (INT64_MIN, INT64_MAX), (-1, -86400000), (-86400001, 0)])
def test_times_at_the_ends_of_int64(kiln_bin, tmp_path, created, updated):
    kiln = Kiln(kiln_bin, tmp_path)
    assert kiln.out("meta", "register", "RawData", "/raw") == "1\n"
    db = sqlite3.connect(tmp_path / "metadata.sqlite")
    db.execute("UPDATE artifacts SET create_time_ms = ?, update_time_ms = ?", (created, updated))
    db.commit()
    db.close()
    assert iso_any(INT64_MIN) == "-292275055-05-16T16:47:04.192Z"  # the reference itself
    lines = kiln.out("meta", "show", "1").splitlines()
    assert lines[4:6] == [f"  created: {iso_any(created)}", f"  updated: {iso_any(updated)}"]
    a = kiln.json("meta", "show", "1")["artifact"]
    assert (a["create_time_ms"], a["create_time"]) == (created, iso_any(created))
    assert (a["update_time_ms"], a["update_time"]) == (updated, iso_any(updated))
    assert kiln.out("meta", "ls", "artifacts").splitlines()[1].endswith(
        iso_any(created)[:-5] + "Z")


def test_lineage_text_announces_every_event_the_depth_cuts(kiln_bin, tmp_path):
    """An execution in the graph can still have used (or made) an artifact at the depth
    limit through an event the walk did not reach; that event is announced too."""
    kiln = Kiln(kiln_bin, tmp_path)
    assert kiln.out("meta", "register", "Raw", "/r") == "1\n"
    record(kiln, "C1", "--input", "x=1", "--output", "d=D:/d")        # e1: 1 -> 2
    record(kiln, "Z", "--input", "a=1", "--input", "b=2", "--output", "o=O:/o")  # e2
    t = {e["id"]: iso(e["create_time_ms"]) for e in kiln.json("meta", "ls", "executions")}
    assert kiln.out("lineage", "1", "--direction", "down", "--depth", "1").splitlines() == [
        "artifact 1 Raw /r",
        f"  used by execution 1 C1 as x (COMPLETE, {t[1]})",
        "    d -> artifact 2 D /d",
        "      ... used by 1 more execution beyond --depth 1",
        f"  used by execution 2 Z as a (COMPLETE, {t[2]})",
        "    o -> artifact 3 O /o",
    ]
    # Upstream: X makes 4 and 5; T reads 4 directly and 5 through Y.
    record(kiln, "X", "--output", "b=B:/b", "--output", "a=A:/a")      # e3: 4, 5
    record(kiln, "Y", "--input", "a=5", "--output", "c=C:/c")          # e4: 6
    record(kiln, "T", "--input", "b=4", "--input", "c=6", "--output", "m=M:/m")  # e5: 7
    t = {e["id"]: iso(e["create_time_ms"]) for e in kiln.json("meta", "ls", "executions")}
    assert kiln.out("lineage", "7", "--direction", "up", "--depth", "2").splitlines() == [
        "artifact 7 M /m",
        f"  made by execution 5 T as m (COMPLETE, {t[5]})",
        "    b <- artifact 4 B /b",
        f"      made by execution 3 X as b (COMPLETE, {t[3]})",
        "    c <- artifact 6 C /c",
        f"      made by execution 4 Y as c (COMPLETE, {t[4]})",
        "        a <- artifact 5 A /a",
        "          ... made by 1 more execution beyond --depth 2",
    ]
    # One more hop reaches that event: X is then shown under 5 as well.
    assert kiln.out("lineage", "7", "--direction", "up", "--depth", "3").splitlines()[-1] == (
        f"          made by execution 3 X as a (COMPLETE, {t[3]}) (see above)")


def test_events_of_other_types_are_not_inputs_or_outputs(kiln_bin, tmp_path):
    """A store written by another tool may hold events that are neither INPUT nor OUTPUT
    (type 0, UNKNOWN): show leaves them out of text and JSON alike, lineage ignores them."""
    kiln = Kiln(kiln_bin, tmp_path)
    assert kiln.out("meta", "register", "Raw", "/r") == "1\n"
    record(kiln, "Step", "--output", "o=O:/o")
    db = sqlite3.connect(tmp_path / "metadata.sqlite")
    db.execute("INSERT INTO events (artifact_id, execution_id, type, path, time_ms) "
               "VALUES (1, 1, 0, 'odd', 0)")
    db.commit()
    db.close()
    a = kiln.json("meta", "show", "1")
    assert (a["produced_by"], a["used_by"]) == ([], [])
    lines = kiln.out("meta", "show", "1").splitlines()
    assert lines[-2:] == ["  made by: (none)", "  used by: (none)"]
    e = kiln.json("meta", "show", "e1")
    assert e["inputs"] == [] and [o["role"] for o in e["outputs"]] == ["o"]
    assert kiln.out("meta", "show", "e1").splitlines()[-3:] == [
        "  inputs: (none)", "  outputs:", "    o -> artifact 2 O /o"]
    assert kiln.out("lineage", "1", "--depth", "0").splitlines() == [
        "artifact 1 Raw /r", "  made by no recorded execution", "  used by no recorded execution"]


# ---------------------------------------------------------------------------------------
# the store

def test_default_store_missing_is_not_created(kiln_bin, tmp_path):
    home = tmp_path / "kiln-home"
    kiln = Kiln(kiln_bin, home)
    path = home / "metadata.sqlite"
    for args in (["meta", "ls", "artifacts"], ["meta", "show", "1"], ["meta", "types"],
                 ["meta", "diff", "1", "2"], ["lineage", "1"]):
        p = kiln.run(*args, expect=EXIT_USAGE)
        cmd = "lineage" if args[0] == "lineage" else "meta"
        assert p.stderr.startswith(f"kiln {cmd}: error: no metadata store at {path}; run a "
                                   "kiln command that records"), p.stderr
        assert p.stderr.endswith("or pass --metadata\n") and p.stdout == ""
    assert not home.exists()
    # Recording creates it.
    assert kiln.out("meta", "register", "RawData", "/raw") == "1\n"
    assert path.exists()
    assert ids(kiln.json("meta", "ls", "artifacts")) == [1]


def test_not_a_database_is_left_alone(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path / "home")
    bogus = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 100
    bogus.write_bytes(content)
    for args in (["meta", "ls", "artifacts"], ["meta", "register", "RawData", "/raw"],
                 ["lineage", "1"]):
        p = kiln.run(*args, "--metadata", f"sqlite:{bogus}", expect=EXIT_USAGE)
        assert p.stderr.endswith(f"error: sqlite:{bogus} is not a kiln metadata store: the "
                                 "file is not a SQLite database\n"), p.stderr
    assert bogus.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_explicit_sqlite_urls(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path / "home")
    db = tmp_path / "store.db"
    for i, url in enumerate((f"sqlite:{db}", f"sqlite://{db}", str(db))):
        assert kiln.out("meta", "register", "RawData", f"/raw/{i}", "--metadata", url) == \
            f"{i + 1}\n"
    assert len(kiln.json("meta", "ls", "artifacts", "--metadata", str(db))) == 3
    p = kiln.run("meta", "ls", "artifacts", "--metadata", "mysql://x/y", expect=EXIT_USAGE)
    assert "unsupported metadata store 'mysql://...'" in p.stderr


def test_help_names_the_default_store(kiln_bin, tmp_path):
    kiln = Kiln(kiln_bin, tmp_path)
    for args in (["meta", "ls"], ["meta", "show"], ["meta", "record"], ["meta", "diff"],
                 ["lineage"], ["meta", "types"], ["meta", "register"]):
        out = kiln.out(*args, "--help")
        assert f"{tmp_path}/metadata.sqlite" in " ".join(out.split()), args
        assert "Example" in out and "Exit codes:" in out, args
    assert "3 the models differ" in kiln.out("meta", "diff", "--help")
    assert "kiln lineage" in kiln.out("--help")


# ---------------------------------------------------------------------------------------
# PostgreSQL

def psql_binary():
    for p in (shutil.which("psql"), "/usr/lib/postgresql/15/bin/psql"):
        if p and os.path.exists(p):
            return p
    raise AssertionError("psql not found (PATH or /usr/lib/postgresql/15/bin)")


def test_postgres_round_trip(kiln_bin, tmp_path):
    url_file = os.path.join(os.environ.get("KILN_BINARY_DIR", "build"), "pgtest", "url")
    assert os.path.exists(url_file), (
        f"{url_file} is missing: run this test through ctest, whose fixture `postgres` "
        "starts a server (ctest -R e2e_test_metadata_cli)")
    server = open(url_file).read().strip()
    schema = "cli_" + uuid.uuid4().hex[:12]
    psql = [psql_binary(), server, "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    subprocess.run(psql + [f"CREATE SCHEMA {schema}"], check=True, capture_output=True)
    try:
        url = f"{server}?options=-c%20search_path%3D{schema}"
        kiln = Kiln(kiln_bin, tmp_path)
        raw = int(kiln.out("meta", "register", "RawData", "/raw/pg", "--property", "span=7",
                           "--metadata", url).strip())
        rec = record(kiln, "Trainer", "--input", f"examples={raw}", "--output",
                     "model=Model:/m/pg", "--param", f"note={HOSTILE[0]}", "--param",
                     "lr=0.5", "--pipeline", "pg", "--run", "r1", "--metadata", url)
        assert (raw, rec) == (1, {"execution_id": 1, "outputs": {"model": 2}})
        assert lineage(kiln, "2", "--metadata", url) == (
            [1, 2], [1], [("INPUT", 1, 1, "examples"), ("OUTPUT", 2, 1, "model")])
        t = iso(kiln.json("meta", "show", "e1", "--metadata", url)["execution"]
                ["create_time_ms"])
        note = json.dumps(HOSTILE[0])
        assert kiln.out("lineage", "2", "--metadata", url).splitlines() == [
            "artifact 2 Model /m/pg",
            f"  made by execution 1 Trainer as model (COMPLETE, {t})  [lr=0.5 note={note}]",
            "    examples <- artifact 1 RawData /raw/pg  [span=7]",
            "  used by no recorded execution",
        ]
        e = kiln.json("meta", "show", "e1", "--metadata", url)
        assert e["execution"]["custom_properties"]["note"] == HOSTILE[0]
        assert kiln.run("meta", "diff", "2", "2", "--metadata", url).returncode == 0
        # The tables went into the test's schema, not the default one, and no SQLite
        # file was made.
        tables = subprocess.run(
            [psql_binary(), server, "-At", "-c",
             f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"],
            check=True, capture_output=True, text=True).stdout.strip()
        assert int(tables) > 0
        assert not (tmp_path / "metadata.sqlite").exists()
    finally:
        subprocess.run(psql + [f"DROP SCHEMA {schema} CASCADE"], check=True,
                       capture_output=True)

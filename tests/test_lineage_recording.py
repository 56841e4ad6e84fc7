"""End-to-end: the data commands record what they did. import -> stats -> schema infer ->
validate leaves a lineage graph in the metadata store whose nodes carry the fingerprints,
spans and row counts of the artifacts on disk; --no-metadata records nothing; a store that
cannot be written fails the command only when --metadata named it."""
import csv
import json
import os
import sqlite3

import pytest


def write_span(root, span, rows):
    d = root / f"span-{span}"
    d.mkdir(parents=True)
    with open(d / "events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "clicks", "country"])
        for i in range(rows):
            w.writerow([f"u{i % 97}", (i * 7) % 13, ["de", "fr", "jp"][i % 3]])


@pytest.fixture
def pipeline(tmp_path, kiln):
    """Runs the four data steps over span 2 of two spans; returns paths."""
    data = tmp_path / "data"
    write_span(data, 1, 300)
    write_span(data, 2, 600)
    p = {k: tmp_path / k for k in ("ds", "stats", "anomalies")}
    p["schema"] = tmp_path / "schema.pbtxt"
    kiln("import", f"{data}/span-{{SPAN}}/*.csv", "--partition-feature", "user",
         "--out", p["ds"], "-q")
    kiln("stats", p["ds"], "--out", p["stats"], "-q")
    kiln("schema", "infer", "--stats", p["stats"] / "statistics.pb", "--split", "train",
         "--out", p["schema"], "-q")
    r = kiln("validate", p["ds"], "--split", "eval", "--schema", p["schema"],
             "--out", p["anomalies"], "-q", check=False)
    assert r.returncode in (0, 3), r.stderr  # 3: ran and found anomalies
    p["data"] = data
    return p


def only(nodes, type_):
    found = [n for n in nodes if n["type"] == type_]
    assert len(found) == 1, (type_, nodes)
    return found[0]


def test_pipeline_lineage_matches_artifacts_on_disk(kiln, pipeline, kiln_home):
    arts = json.loads(kiln("meta", "ls", "artifacts", "--json").stdout)
    assert [a["type"] for a in arts] == [
        "RawData", "Examples", "ExampleStatistics", "Schema", "ExampleAnomalies"]
    anomalies = only(arts, "ExampleAnomalies")
    assert anomalies["uri"] == str(pipeline["anomalies"])
    on_disk = json.load(open(pipeline["anomalies"] / "anomalies.json"))
    assert anomalies["properties"] == {"anomalies": len(on_disk.get("anomaly_info", {}))}

    g = json.loads(kiln("lineage", anomalies["id"], "--direction", "up", "--depth", "10",
                        "--format", "json").stdout)
    by_id = {a["id"]: a for a in g["artifacts"]}
    execs = {e["id"]: e for e in g["executions"]}
    # Every artifact of the run is upstream of the anomalies.
    assert sorted(a["type"] for a in g["artifacts"]) == sorted(a["type"] for a in arts)
    assert sorted(e["type"] for e in g["executions"]) == [
        "ExampleValidator", "Import", "SchemaGen", "StatisticsGen"]

    def inputs_of(exec_type):
        (eid,) = [i for i, e in execs.items() if e["type"] == exec_type]
        return {ev["role"]: by_id[ev["artifact_id"]]["type"]
                for ev in g["events"] if ev["execution_id"] == eid and ev["type"] == "INPUT"}

    assert inputs_of("ExampleValidator") == {"data": "Examples", "schema": "Schema"}
    # schema infer was given stats/statistics.pb; it links to the stats directory artifact.
    assert inputs_of("SchemaGen") == {"statistics": "ExampleStatistics"}
    assert inputs_of("StatisticsGen") == {"data": "Examples"}
    assert inputs_of("Import") == {"data": "RawData"}

    manifest = json.load(open(pipeline["ds"] / "manifest.json"))
    examples = only(g["artifacts"], "Examples")
    assert examples["uri"] == str(pipeline["ds"])
    assert examples["properties"]["fingerprint"] == manifest["fingerprint"]
    assert examples["properties"]["rows"] == 600 == manifest["num_rows"]
    assert examples["properties"]["span"] == 2
    for split in manifest["splits"]:
        assert examples["custom_properties"][f"split.{split['name']}.rows"] == split["rows"]
    raw = only(g["artifacts"], "RawData")
    assert raw["uri"] == str(pipeline["data"] / "span-2" / "events.csv")
    assert raw["properties"] == {"files": 1, "format": "csv", "span": 2}
    imp = only(g["executions"], "Import")
    assert imp["custom_properties"]["partition_feature"] == "user"
    assert imp["custom_properties"]["kiln_version"] == kiln("--version").stdout.split()[1]
    assert imp["state"] == "COMPLETE"
    assert os.path.exists(kiln_home / "metadata.sqlite")


def test_rerun_on_same_raw_data_shares_the_raw_node(kiln, pipeline, tmp_path):
    kiln("import", f"{pipeline['data']}/span-{{SPAN}}/*.csv", "--out", tmp_path / "ds2", "-q")
    raws = json.loads(kiln("meta", "ls", "artifacts", "--type", "RawData", "--json").stdout)
    assert len(raws) == 1
    examples = json.loads(kiln("meta", "ls", "artifacts", "--type", "Examples", "--json").stdout)
    assert len(examples) == 2
    # Same rows, split by content instead of by user: the diff names exactly that.
    d = kiln("meta", "diff", examples[0]["id"], examples[1]["id"], check=False)
    assert d.returncode == 3, d.stdout + d.stderr
    assert "partition_feature: user -> (absent)" in d.stdout


def test_no_metadata_records_nothing(kiln, tmp_path, kiln_home):
    write_span(tmp_path / "data", 1, 50)
    kiln("stats", tmp_path / "data", "--out", tmp_path / "st", "-q", "--no-metadata")
    assert not kiln_home.exists()
    r = kiln("meta", "ls", "artifacts", check=False)
    assert r.returncode == 2
    assert "no metadata store at" in r.stderr
    assert not kiln_home.exists()


def test_explicit_store_that_is_not_a_database_fails_the_command(kiln, tmp_path):
    write_span(tmp_path / "data", 1, 50)
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database\n" * 100)
    before = bogus.read_bytes()
    r = kiln("stats", tmp_path / "data", "--out", tmp_path / "st", "-q",
             "--metadata", f"sqlite:{bogus}", check=False)
    assert r.returncode == 2, r.stderr
    assert "not a SQLite database" in r.stderr
    assert bogus.read_bytes() == before


def test_unwritable_default_store_warns_and_succeeds(kiln, tmp_path, monkeypatch):
    write_span(tmp_path / "data", 1, 50)
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("KILN_HOME", str(blocker / "home"))
    r = kiln("stats", tmp_path / "data", "--out", tmp_path / "st", "-q")
    assert "warning: not recorded in the metadata store" in r.stderr
    assert (tmp_path / "st" / "statistics.pb").exists()


def test_store_is_plain_sqlite_in_wal_mode(kiln, pipeline, kiln_home):
    con = sqlite3.connect(kiln_home / "metadata.sqlite")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 4
        assert con.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 9
    finally:
        con.close()

"""kiln's TensorBoard event files, read back by TensorBoard itself.

tests/tools/tb_writer_fixture.cc writes known events with kiln's EventWriter (its
header lists them). Here TensorBoard's own code reads them: the event file loader,
the legacy EventAccumulator, the multiplexer data provider its dashboards query, and
the hparams plugin's request handlers. Nothing here uses kiln's protos.
"""
import os
import re
import shutil
import socket
import struct
import subprocess

import numpy as np
import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import summary_pb2
from tensorboard.compat.proto import types_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import backend_context
from tensorboard.plugins.hparams import get_experiment
from tensorboard.plugins.hparams import list_session_groups
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = 1700000000.0
KEEP_ALL = {ea.TENSORS: 0, ea.HISTOGRAMS: 0, ea.SCALARS: 0, ea.COMPRESSED_HISTOGRAMS: 0}


def f32(x):
    """x rounded to float32, as a Python float (what TensorBoard hands back)."""
    return float(np.float32(x))


def loss(step):
    return float(np.float32(1.0) / np.float32(step + 1))


WEIGHTS = (np.arange(100, dtype=np.float32) - np.float32(50)) / np.float32(10)


@pytest.fixture(scope="session")
def writer_bin():
    path = os.environ.get("KILN_TB_WRITER",
                          os.path.join(ROOT, "build", "tests", "kiln_tb_writer_fixture"))
    assert os.path.exists(path), f"fixture binary not found at {path}"
    return path


def run_writer(writer_bin, logdir, *args, expect_rc=0):
    proc = subprocess.Popen([writer_bin, str(logdir), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == expect_rc, err
    path = out.strip()
    assert os.path.dirname(path) == str(logdir)
    return path, proc.pid


@pytest.fixture
def logdir(tmp_path):
    return tmp_path / "model" / "logs"


@pytest.fixture
def event_file(writer_bin, logdir):
    path, _ = run_writer(writer_bin, logdir)
    return path


def raw_records(path):
    """Splits a TFRecord file, checking both masked CRC32Cs with TensorBoard's function."""
    data = open(path, "rb").read()
    records, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 12]
        assert len(header) == 12, f"torn header at {pos}"
        (length,) = struct.unpack("<Q", header[:8])
        assert struct.unpack("<I", header[8:])[0] == masked_crc32c(header[:8])
        body = data[pos + 12:pos + 12 + length]
        footer = data[pos + 12 + length:pos + 16 + length]
        assert len(body) == length and len(footer) == 4, f"torn record at {pos}"
        assert struct.unpack("<I", footer)[0] == masked_crc32c(body)
        records.append(body)
        pos += 16 + length
    return records


def load_events(path):
    return list(event_file_loader.EventFileLoader(path).Load())


def accumulator(path):
    acc = ea.EventAccumulator(path, size_guidance=KEEP_ALL)
    acc.Reload()
    return acc


def provider_for(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(size_guidance=KEEP_ALL)
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return multiplexer, data_provider.MultiplexerDataProvider(multiplexer, str(logdir))


def test_file_name_framing_and_first_record(writer_bin, logdir):
    path, pid = run_writer(writer_bin, logdir)
    host = re.escape(socket.gethostname())
    assert re.fullmatch(rf"events\.out\.tfevents\.\d{{10}}\.{host}\.{pid}\.0",
                        os.path.basename(path)), path
    assert os.listdir(logdir) == [os.path.basename(path)]

    records = raw_records(path)
    events = load_events(path)
    assert len(events) == len(records) == 16  # version, start, 10 + 2 scalars, histo, end
    assert events[0].file_version == "brain.Event:2"
    assert events[0].source_metadata.writer == "kiln"
    assert events[0].wall_time > START


def test_event_accumulator_reads_scalars_as_float_tensors(event_file):
    acc = accumulator(event_file)
    tags = acc.Tags()
    assert sorted(tags["tensors"]) == sorted([
        "loss", "eval/accuracy", hparams_metadata.SESSION_START_INFO_TAG,
        hparams_metadata.SESSION_END_INFO_TAG])
    assert tags["histograms"] == ["weights/dense"]
    assert acc.file_version == 2.0

    for tag in ("loss", "eval/accuracy"):
        md = acc.SummaryMetadata(tag)
        assert md.plugin_data.plugin_name == "scalars"
        assert md.data_class == summary_pb2.DATA_CLASS_SCALAR

    got = []
    for t in acc.Tensors("loss"):
        assert t.tensor_proto.dtype == types_pb2.DT_FLOAT
        array = tensor_util.make_ndarray(t.tensor_proto)
        assert array.dtype == np.float32 and array.shape == ()
        got.append((t.step, t.wall_time, array.item()))
    assert got == [(s, START + s + 0.5, loss(s)) for s in range(10)]

    acc_values = [(t.step, tensor_util.make_ndarray(t.tensor_proto).item())
                  for t in acc.Tensors("eval/accuracy")]
    assert acc_values == [(4, 0.5), (9, 0.75)]


def test_event_accumulator_reads_histogram(event_file):
    (event,) = accumulator(event_file).Histograms("weights/dense")
    assert event.step == 9
    assert event.wall_time == START + 9.5
    h = event.histogram_value
    values = WEIGHTS.astype(np.float64)
    assert h.num == 100
    assert h.min == -5.0
    assert h.max == f32(4.9)
    assert h.sum == float(np.sum(values))  # exact: float32 values add up exactly in double
    assert h.sum_squares == pytest.approx(float(np.sum(values * values)), rel=1e-12)
    assert len(h.bucket) == len(h.bucket_limit) == 30
    assert sum(h.bucket) == 100
    assert h.bucket_limit[-1] == h.max
    assert all(a < b for a, b in zip(h.bucket_limit, h.bucket_limit[1:]))
    # Each bucket holds exactly the values in [previous limit, limit).
    lefts = [-np.inf] + list(h.bucket_limit[:-1])
    for i, (lo, hi, count) in enumerate(zip(lefts, h.bucket_limit, h.bucket)):
        inside = (values >= lo) & ((values < hi) if i < 29 else (values <= hi))
        assert count == int(inside.sum()), i


def test_data_provider_serves_scalars_and_histograms(event_file, logdir):
    _, provider = provider_for(logdir)  # TensorBoard started on MODEL_DIR/logs: run "."
    ctx = context.RequestContext()
    listing = provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    assert set(listing) == {"."}
    assert set(listing["."]) == {"loss", "eval/accuracy"}
    assert listing["."]["loss"].max_step == 9

    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=1000)
    assert [(d.step, d.wall_time, d.value) for d in scalars["."]["loss"]] == [
        (s, START + s + 0.5, loss(s)) for s in range(10)]
    assert [(d.step, d.value) for d in scalars["."]["eval/accuracy"]] == [(4, 0.5), (9, 0.75)]

    # The histogram dashboards read the legacy HistogramProto converted to [k, 3] tensors.
    tensors = provider.list_tensors(ctx, experiment_id="", plugin_name="histograms")
    assert set(tensors["."]) == {"weights/dense"}
    (datum,) = provider.read_tensors(ctx, experiment_id="", plugin_name="histograms",
                                     downsample=1000)["."]["weights/dense"]
    assert datum.step == 9
    buckets = datum.numpy
    assert buckets.shape == (30, 3)
    assert buckets[:, 2].sum() == 100
    assert buckets[0, 0] == np.float32(-5.0)
    assert buckets[-1, 1] == np.float32(4.9)
    assert (buckets[1:, 0] == buckets[:-1, 1]).all()


def test_hparams_records_parse_with_tensorboards_metadata_helpers(event_file):
    content = accumulator(event_file).PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    assert set(content) == {hparams_metadata.SESSION_START_INFO_TAG,
                            hparams_metadata.SESSION_END_INFO_TAG}

    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG])
    assert start.group_name == "kiln-group"
    assert start.start_time_secs == START
    assert set(start.hparams) == {"learning_rate", "optimizer", "batch_norm", "layers"}
    assert start.hparams["learning_rate"].number_value == 0.01
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["batch_norm"].WhichOneof("kind") == "bool_value"
    assert start.hparams["batch_norm"].bool_value is True
    assert start.hparams["layers"].number_value == 3.0

    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS
    assert end.end_time_secs == START + 100


def check_hparams_dashboard(tb_logdir, session_name):
    """What the hparams dashboard shows when TensorBoard is started on tb_logdir."""
    multiplexer, provider = provider_for(tb_logdir)
    tb_context = base_plugin.TBContext(data_provider=provider, multiplexer=multiplexer,
                                       logdir=str(tb_logdir))
    hparams = backend_context.Context(tb_context)
    ctx = context.RequestContext()

    experiment = get_experiment.Handler(
        ctx, hparams, "", api_pb2.GetExperimentRequest(include_metrics=True)).run()
    assert {(h.name, h.type) for h in experiment.hparam_infos} == {
        ("learning_rate", api_pb2.DATA_TYPE_FLOAT64), ("layers", api_pb2.DATA_TYPE_FLOAT64),
        ("optimizer", api_pb2.DATA_TYPE_STRING), ("batch_norm", api_pb2.DATA_TYPE_BOOL)}
    assert {(m.name.group, m.name.tag) for m in experiment.metric_infos} == {
        ("", "loss"), ("", "eval/accuracy")}

    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=10, include_metrics=True,
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS,
                          api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
    response = list_session_groups.Handler(ctx, hparams, "", request).run()
    (group,) = response.session_groups
    assert group.name == "kiln-group"
    assert group.hparams["optimizer"].string_value == "adam"
    assert group.hparams["learning_rate"].number_value == 0.01
    (session,) = group.sessions
    assert session.name == session_name
    assert session.status == api_pb2.STATUS_SUCCESS
    assert (session.start_time_secs, session.end_time_secs) == (START, START + 100)
    metrics = {m.name.tag: (m.training_step, m.value) for m in session.metric_values}
    assert metrics == {"loss": (9, loss(9)), "eval/accuracy": (9, 0.75)}


def test_hparams_dashboard_shows_session_under_the_logdir(event_file, tmp_path):
    # TensorBoard started on the directory holding the model directories: each
    # MODEL_DIR/logs is one run, i.e. one session.
    check_hparams_dashboard(tmp_path, "model/logs")


def test_hparams_dashboard_at_logdir_root_with_experiment_record(writer_bin, logdir):
    # TensorBoard started on MODEL_DIR/logs itself: the session is the run ".", for
    # which TensorBoard finds metric values only through an explicit experiment record.
    run_writer(writer_bin, logdir, "--experiment")
    check_hparams_dashboard(logdir, ".")


def test_crash_keeps_every_flushed_record(writer_bin, logdir):
    # Steps 0..4 were flushed, 5..9 only buffered when the process died.
    path, _ = run_writer(writer_bin, logdir, "--crash", expect_rc=3)
    assert len(raw_records(path)) == 6  # whole records only, CRCs intact
    acc = accumulator(path)
    assert [(t.step, tensor_util.make_ndarray(t.tensor_proto).item())
            for t in acc.Tensors("loss")] == [(s, loss(s)) for s in range(5)]


def test_torn_last_record_leaves_earlier_ones_readable(event_file, tmp_path):
    # A crash in the middle of a write leaves part of the last record; TensorBoard must
    # still read everything before it.
    torn_dir = tmp_path / "torn"
    torn_dir.mkdir()
    torn = torn_dir / os.path.basename(event_file)
    shutil.copy(event_file, torn)
    size = os.path.getsize(torn)
    os.truncate(torn, size - 7)

    acc = accumulator(str(torn))
    assert [t.step for t in acc.Tensors("loss")] == list(range(10))
    assert len(acc.Histograms("weights/dense")) == 1
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    assert set(content) == {hparams_metadata.SESSION_START_INFO_TAG}  # the end record was torn

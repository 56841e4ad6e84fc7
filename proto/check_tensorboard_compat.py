#!/usr/bin/env python3
"""Checks that kiln's TensorBoard event protos match the ones TensorBoard reads.

Usage: python proto/check_tensorboard_compat.py DESCRIPTOR_SET_FILE

DESCRIPTOR_SET_FILE is what `protoc --descriptor_set_out --include_imports`
writes for the files under proto/. Each kiln file below is compared with the
descriptor compiled into the installed `tensorboard` package, using the same
field-by-field comparison as check_tfmd_compat.py (numbers, names, labels,
types, oneofs, packedness, enum values, reserved ranges, imports).

TensorBoard ships TensorFlow's event protos under its own package name
(`tensorboard`, files tensorboard/compat/proto/*.proto); package names are not
on the wire, so those descriptors are renamed to TensorFlow's package and paths
before comparing. The messages and enum values kiln leaves out on purpose are
listed in OMITTED; anything else missing is a mismatch. A cross-parse test then
feeds bytes written by TensorBoard's classes to classes built from ours and
back.

Exit status: 0 when everything matches, 1 on any mismatch, 2 on usage or
environment errors.
"""

import importlib
import os
import sys

from google.protobuf import descriptor_pb2
from google.protobuf import text_format

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_tfmd_compat as tfmd  # noqa: E402  (shared comparison code)

_COMPAT = "tensorboard/compat/proto/"

# kiln file -> (TensorBoard module, TensorBoard file is a renamed TensorFlow one)
TB_FILES = {
    "tensorflow/core/framework/types.proto": ("tensorboard.compat.proto.types_pb2", True),
    "tensorflow/core/framework/tensor_shape.proto":
        ("tensorboard.compat.proto.tensor_shape_pb2", True),
    "tensorflow/core/framework/resource_handle.proto":
        ("tensorboard.compat.proto.resource_handle_pb2", True),
    "tensorflow/core/framework/tensor.proto": ("tensorboard.compat.proto.tensor_pb2", True),
    "tensorflow/core/framework/histogram.proto": ("tensorboard.compat.proto.histogram_pb2", True),
    "tensorflow/core/framework/summary.proto": ("tensorboard.compat.proto.summary_pb2", True),
    "tensorflow/core/util/event.proto": ("tensorboard.compat.proto.event_pb2", True),
    "tensorboard/plugins/hparams/api.proto": ("tensorboard.plugins.hparams.api_pb2", False),
    "tensorboard/plugins/hparams/plugin_data.proto":
        ("tensorboard.plugins.hparams.plugin_data_pb2", False),
}

# Upstream definitions kiln does not mirror, by (kiln) file. Values are
# top-level message or enum names; "Enum.VALUE" drops one enum value and
# "Enum.*_REF" drops every value whose name ends in _REF.
OMITTED = {
    # Reference dtypes only exist on graph edges, never in a serialized tensor.
    "tensorflow/core/framework/types.proto": {"DataType.*_REF"},
    # TensorFlow's worker health RPC shares event.proto but is not an event.
    "tensorflow/core/util/event.proto": {
        "WatchdogConfig", "RequestedExitCode", "WorkerHeartbeatRequest",
        "WorkerHeartbeatResponse", "WorkerHealth", "WorkerShutdownMode"},
    # The hparams plugin's HTTP API; a writer needs only the experiment messages.
    "tensorboard/plugins/hparams/api.proto": {
        "SessionGroup", "MetricValue", "Session", "GetExperimentRequest",
        "ListSessionGroupsRequest", "ColParams", "ListSessionGroupsResponse",
        "ListMetricEvalsRequest", "SortOrder", "AggregationType"},
}


def _our_path(compat_path):
    """kiln's path for a TensorBoard compat file, by its base name."""
    base = compat_path[len(_COMPAT):]
    for ours in TB_FILES:
        if ours.startswith("tensorflow/") and os.path.basename(ours) == base:
            return ours
    return compat_path


def _rename_types(messages, old, new):
    for m in messages:
        for f in m.field:
            if f.type_name.startswith(old):
                f.type_name = new + f.type_name[len(old):]
        _rename_types(m.nested_type, old, new)


def normalized_reference(our_name, module, renamed):
    """TensorBoard's descriptor, renamed to TensorFlow's names, minus OMITTED."""
    ref = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(ref)
    if renamed:
        ref.name = our_name
        ref.package = "tensorflow"
        deps = [_our_path(d) if d.startswith(_COMPAT) else d for d in ref.dependency]
        del ref.dependency[:]
        ref.dependency.extend(deps)
        _rename_types(ref.message_type, ".tensorboard.", ".tensorflow.")
    omitted = OMITTED.get(our_name, set())
    kept = [m for m in ref.message_type if m.name not in omitted]
    del ref.message_type[:]
    ref.message_type.extend(kept)
    kept = [e for e in ref.enum_type if e.name not in omitted]
    del ref.enum_type[:]
    ref.enum_type.extend(kept)
    for e in ref.enum_type:
        drop_ref = e.name + ".*_REF" in omitted
        values = [v for v in e.value
                  if e.name + "." + v.name not in omitted
                  and not (drop_ref and v.name.endswith("_REF"))]
        del e.value[:]
        e.value.extend(values)
    return ref


# Messages written as text: each is serialized by TensorBoard's class, parsed
# by ours, and both must render the same (text format carries no package).
_CROSS_SAMPLES = [
    ("tensorflow.Event", "tensorboard.compat.proto.event_pb2", "Event",
     'wall_time: 1700000000.25 file_version: "brain.Event:2" '
     'source_metadata { writer: "kiln" }'),
    ("tensorflow.Event", "tensorboard.compat.proto.event_pb2", "Event", """
wall_time: 1700000001.5 step: 7
summary {
  value { tag: "loss"
    metadata { plugin_data { plugin_name: "scalars" } data_class: DATA_CLASS_SCALAR }
    tensor { dtype: DT_FLOAT tensor_shape {} float_val: 0.125 } }
  value { tag: "w" metadata { display_name: "weights" summary_description: "d" }
    histo { min: -1 max: 2 num: 3 sum: 1 sum_squares: 5
            bucket_limit: 0 bucket_limit: 2 bucket: 1 bucket: 2 } }
  value { tag: "t" tensor { dtype: DT_DOUBLE tensor_shape { dim { size: 2 } dim { size: 3 name: "c" } }
          tensor_content: "\\001\\002" version_number: 1 } }
  value { tag: "s" simple_value: 2.5 }
}"""),
    ("tensorflow.Event", "tensorboard.compat.proto.event_pb2", "Event",
     'step: 3 session_log { status: CHECKPOINT checkpoint_path: "/m/ckpt" msg: "m" }'),
    ("tensorboard.hparams.HParamsPluginData", "tensorboard.plugins.hparams.plugin_data_pb2",
     "HParamsPluginData", """
version: 0
session_start_info {
  hparams { key: "lr" value { number_value: 0.01 } }
  hparams { key: "opt" value { string_value: "adam" } }
  hparams { key: "bn" value { bool_value: true } }
  group_name: "g" model_uri: "/m" start_time_secs: 1700000000
}"""),
    ("tensorboard.hparams.HParamsPluginData", "tensorboard.plugins.hparams.plugin_data_pb2",
     "HParamsPluginData",
     "session_end_info { status: STATUS_FAILURE end_time_secs: 1700000100.5 }"),
    ("tensorboard.hparams.HParamsPluginData", "tensorboard.plugins.hparams.plugin_data_pb2",
     "HParamsPluginData", """
experiment {
  name: "e" description: "d" user: "u" time_created_secs: 1
  hparam_infos { name: "lr" type: DATA_TYPE_FLOAT64
                 domain_interval { min_value: 0.001 max_value: 0.1 } differs: true }
  hparam_infos { name: "opt" type: DATA_TYPE_STRING
                 domain_discrete { values { string_value: "adam" } values { string_value: "sgd" } } }
  metric_infos { name { group: "validation" tag: "accuracy" } display_name: "acc"
                 dataset_type: DATASET_VALIDATION }
}"""),
]


def cross_parse(pool, report):
    for full_name, module_name, cls_name, text in _CROSS_SAMPLES:
        ref_cls = getattr(importlib.import_module(module_name), cls_name)
        try:
            our_cls = tfmd._get_class(pool.FindMessageTypeByName(full_name))
        except KeyError:
            report.error("cross-parse: %s not defined by our files" % full_name)
            continue
        ref_msg = text_format.Parse(text, ref_cls())
        want = text_format.MessageToString(ref_msg)
        ours = our_cls.FromString(ref_msg.SerializeToString(deterministic=True))
        if text_format.MessageToString(ours) != want:
            report.error("cross-parse: %s differs after wire round trip" % full_name)
        # Equal bytes also prove that nothing was kept as an unknown field.
        if ours.SerializeToString(deterministic=True) != ref_msg.SerializeToString(
                deterministic=True):
            report.error("cross-parse: %s re-serializes to different bytes" % full_name)
        ours_text = text_format.Parse(text, our_cls())
        back = ref_cls.FromString(ours_text.SerializeToString(deterministic=True))
        if back != ref_msg:
            report.error("cross-parse: %s written by ours is read differently upstream"
                         % full_name)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        with open(argv[1], "rb") as fh:
            fds.ParseFromString(fh.read())
    except Exception as exc:  # noqa: BLE001 - any failure is fatal here
        sys.stderr.write("cannot read descriptor set %s: %s\n" % (argv[1], exc))
        return 2
    ours = {f.name: f for f in fds.file}
    report = tfmd.Report()

    for fname, (module_name, renamed) in TB_FILES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            sys.stderr.write("cannot import %s: %s\n" % (module_name, exc))
            return 2
        if fname not in ours:
            report.error("%s: not in the descriptor set" % fname)
            continue
        tfmd.compare_files(ours[fname], normalized_reference(fname, module, renamed), report)

    return tfmd.finish(report, fds, cross_parse)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

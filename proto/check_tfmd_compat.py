#!/usr/bin/env python3
"""Checks that kiln's .proto files match the published TFMD / tf.Example ones.

Usage: python proto/check_tfmd_compat.py DESCRIPTOR_SET_FILE

DESCRIPTOR_SET_FILE is what `protoc --descriptor_set_out` (ideally with
--include_imports) writes for the files under proto/. Each kiln file is
compared with the descriptor of the same file shipped in the installed
`tensorflow_metadata` Python package: syntax, package, every message, field
(number, name, label, type, type name, oneof, default, packedness, proto3
presence), enum (values, numbers, first value), map entries and reserved
ranges. tf.Example / tf.SequenceExample are compared with
`tensorflow.core.example.*_pb2` when TensorFlow is importable, and otherwise
with the spec written out below. A short cross-parse test then feeds bytes
and text produced by the upstream classes to classes built from our
descriptors.

Exit status: 0 when everything matches, 1 on any mismatch, 2 on usage or
environment errors.
"""

import importlib
import sys

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import text_format

try:  # protobuf >= 4.21
    from google.protobuf.message_factory import GetMessageClass as _get_class
except ImportError:  # pragma: no cover - older protobuf
    from google.protobuf import message_factory as _mf

    def _get_class(desc):
        return _mf.MessageFactory(desc.file.pool).GetPrototype(desc)


FDP = descriptor_pb2.FieldDescriptorProto

TFMD_FILES = {
    "tensorflow_metadata/proto/v0/path.proto":
        "tensorflow_metadata.proto.v0.path_pb2",
    "tensorflow_metadata/proto/v0/derived_feature.proto":
        "tensorflow_metadata.proto.v0.derived_feature_pb2",
    "tensorflow_metadata/proto/v0/statistics.proto":
        "tensorflow_metadata.proto.v0.statistics_pb2",
    "tensorflow_metadata/proto/v0/schema.proto":
        "tensorflow_metadata.proto.v0.schema_pb2",
    "tensorflow_metadata/proto/v0/anomalies.proto":
        "tensorflow_metadata.proto.v0.anomalies_pb2",
}

TF_FILES = {
    "tensorflow/core/example/feature.proto":
        "tensorflow.core.example.feature_pb2",
    "tensorflow/core/example/example.proto":
        "tensorflow.core.example.example_pb2",
}

# Public tf.Example definitions, used when TensorFlow itself is not installed.
# message -> list of (number, name, label, type, type_name, oneof, packed)
_R, _O = FDP.LABEL_REPEATED, FDP.LABEL_OPTIONAL
TF_EXAMPLE_SPEC = {
    "tensorflow/core/example/feature.proto": {
        "syntax": "proto3",
        "package": "tensorflow",
        "messages": {
            "tensorflow.BytesList": [(1, "value", _R, FDP.TYPE_BYTES, "", None, False)],
            "tensorflow.FloatList": [(1, "value", _R, FDP.TYPE_FLOAT, "", None, True)],
            "tensorflow.Int64List": [(1, "value", _R, FDP.TYPE_INT64, "", None, True)],
            "tensorflow.Feature": [
                (1, "bytes_list", _O, FDP.TYPE_MESSAGE, ".tensorflow.BytesList", "kind", False),
                (2, "float_list", _O, FDP.TYPE_MESSAGE, ".tensorflow.FloatList", "kind", False),
                (3, "int64_list", _O, FDP.TYPE_MESSAGE, ".tensorflow.Int64List", "kind", False),
            ],
            "tensorflow.Features": [
                (1, "feature", _R, FDP.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry", None, False)],
            "tensorflow.Features.FeatureEntry": [
                (1, "key", _O, FDP.TYPE_STRING, "", None, False),
                (2, "value", _O, FDP.TYPE_MESSAGE, ".tensorflow.Feature", None, False),
            ],
            "tensorflow.FeatureList": [
                (1, "feature", _R, FDP.TYPE_MESSAGE, ".tensorflow.Feature", None, False)],
            "tensorflow.FeatureLists": [
                (1, "feature_list", _R, FDP.TYPE_MESSAGE,
                 ".tensorflow.FeatureLists.FeatureListEntry", None, False)],
            "tensorflow.FeatureLists.FeatureListEntry": [
                (1, "key", _O, FDP.TYPE_STRING, "", None, False),
                (2, "value", _O, FDP.TYPE_MESSAGE, ".tensorflow.FeatureList", None, False),
            ],
        },
        "map_entries": {"tensorflow.Features.FeatureEntry",
                        "tensorflow.FeatureLists.FeatureListEntry"},
    },
    "tensorflow/core/example/example.proto": {
        "syntax": "proto3",
        "package": "tensorflow",
        "messages": {
            "tensorflow.Example": [
                (1, "features", _O, FDP.TYPE_MESSAGE, ".tensorflow.Features", None, False)],
            "tensorflow.SequenceExample": [
                (1, "context", _O, FDP.TYPE_MESSAGE, ".tensorflow.Features", None, False),
                (2, "feature_lists", _O, FDP.TYPE_MESSAGE, ".tensorflow.FeatureLists", None, False),
            ],
        },
        "map_entries": set(),
    },
}

_PACKABLE = {
    FDP.TYPE_DOUBLE, FDP.TYPE_FLOAT, FDP.TYPE_INT64, FDP.TYPE_UINT64,
    FDP.TYPE_INT32, FDP.TYPE_FIXED64, FDP.TYPE_FIXED32, FDP.TYPE_BOOL,
    FDP.TYPE_UINT32, FDP.TYPE_ENUM, FDP.TYPE_SFIXED32, FDP.TYPE_SFIXED64,
    FDP.TYPE_SINT32, FDP.TYPE_SINT64,
}


class Report:
    def __init__(self):
        self.errors = []
        self.warnings = []
        self.checked_messages = 0
        self.checked_fields = 0
        self.checked_enums = 0

    def error(self, msg):
        self.errors.append(msg)

    def warn(self, msg):
        self.warnings.append(msg)


def _syntax(fdp):
    if fdp.syntax in ("", "proto2"):
        return "proto2"
    return fdp.syntax


def _packed(fdp_file, field):
    """Whether a repeated field is written packed on the wire."""
    if field.label != FDP.LABEL_REPEATED or field.type not in _PACKABLE:
        return False
    if field.options.HasField("packed"):
        return field.options.packed
    return _syntax(fdp_file) == "proto3"


def _walk_messages(prefix, messages):
    for m in messages:
        full = prefix + "." + m.name if prefix else m.name
        yield full, m
        yield from _walk_messages(full, m.nested_type)


def _walk_enums(prefix, messages, enums):
    for e in enums:
        yield (prefix + "." + e.name if prefix else e.name), e
    for m in messages:
        full = prefix + "." + m.name if prefix else m.name
        yield from _walk_enums(full, m.nested_type, m.enum_type)


def _ranges(rs):
    return sorted((r.start, r.end) for r in rs)


def _field_key(fdp_file, msg, f):
    oneof = None
    if f.HasField("oneof_index") and not f.proto3_optional:
        oneof = msg.oneof_decl[f.oneof_index].name
    return {
        "name": f.name,
        "label": FDP.Label.Name(f.label),
        "type": FDP.Type.Name(f.type),
        "type_name": f.type_name,
        "oneof": oneof,
        "default": f.default_value if f.HasField("default_value") else None,
        "packed": _packed(fdp_file, f),
        "proto3_optional": f.proto3_optional,
    }


def compare_files(ours, ref, report):
    where = ours.name
    if _syntax(ours) != _syntax(ref):
        report.error("%s: syntax %s, upstream %s" % (where, _syntax(ours), _syntax(ref)))
    if ours.package != ref.package:
        report.error("%s: package %r, upstream %r" % (where, ours.package, ref.package))
    if set(ours.dependency) != set(ref.dependency):
        report.error("%s: imports %s, upstream %s"
                     % (where, sorted(ours.dependency), sorted(ref.dependency)))

    pkg = ref.package
    our_msgs = dict(_walk_messages(pkg, ours.message_type))
    ref_msgs = dict(_walk_messages(pkg, ref.message_type))
    for name in sorted(set(ref_msgs) - set(our_msgs)):
        report.error("%s: message %s missing" % (where, name))
    for name in sorted(set(our_msgs) - set(ref_msgs)):
        report.error("%s: message %s not in upstream" % (where, name))
    for name in sorted(set(ref_msgs) & set(our_msgs)):
        report.checked_messages += 1
        om, rm = our_msgs[name], ref_msgs[name]
        if om.options.map_entry != rm.options.map_entry:
            report.error("%s: map_entry %s, upstream %s"
                         % (name, om.options.map_entry, rm.options.map_entry))
        if _ranges(om.reserved_range) != _ranges(rm.reserved_range):
            report.error("%s: reserved numbers %s, upstream %s"
                         % (name, _ranges(om.reserved_range), _ranges(rm.reserved_range)))
        if sorted(om.reserved_name) != sorted(rm.reserved_name):
            report.error("%s: reserved names %s, upstream %s"
                         % (name, sorted(om.reserved_name), sorted(rm.reserved_name)))
        if _ranges(om.extension_range) != _ranges(rm.extension_range):
            report.error("%s: extension ranges differ" % name)
        of = {f.number: f for f in om.field}
        rf = {f.number: f for f in rm.field}
        for num in sorted(set(rf) - set(of)):
            report.error("%s: field %d (%s) missing" % (name, num, rf[num].name))
        for num in sorted(set(of) - set(rf)):
            report.error("%s: field %d (%s) not in upstream" % (name, num, of[num].name))
        for num in sorted(set(of) & set(rf)):
            report.checked_fields += 1
            ok = _field_key(ours, om, of[num])
            rk = _field_key(ref, rm, rf[num])
            for attr in ok:
                if ok[attr] != rk[attr]:
                    report.error("%s field %d (%s): %s %r, upstream %r"
                                 % (name, num, rk["name"], attr, ok[attr], rk[attr]))
            if of[num].options.deprecated != rf[num].options.deprecated:
                report.warn("%s.%s: deprecated flag differs" % (name, rk["name"]))

    our_enums = dict(_walk_enums(pkg, ours.message_type, ours.enum_type))
    ref_enums = dict(_walk_enums(pkg, ref.message_type, ref.enum_type))
    for name in sorted(set(ref_enums) - set(our_enums)):
        report.error("%s: enum %s missing" % (where, name))
    for name in sorted(set(our_enums) - set(ref_enums)):
        report.error("%s: enum %s not in upstream" % (where, name))
    for name in sorted(set(ref_enums) & set(our_enums)):
        report.checked_enums += 1
        oe, re_ = our_enums[name], ref_enums[name]
        ov = [(v.name, v.number) for v in oe.value]
        rv = [(v.name, v.number) for v in re_.value]
        if set(ov) != set(rv):
            missing = sorted(set(rv) - set(ov), key=lambda x: x[1])
            extra = sorted(set(ov) - set(rv), key=lambda x: x[1])
            report.error("%s: values differ; missing %s, extra %s" % (name, missing, extra))
        if ov and rv and ov[0] != rv[0]:
            # The first value is the default of proto2 enum fields.
            report.error("%s: first value %s, upstream %s" % (name, ov[0], rv[0]))
        if _ranges(oe.reserved_range) != _ranges(re_.reserved_range):
            report.error("%s: reserved numbers %s, upstream %s"
                         % (name, _ranges(oe.reserved_range), _ranges(re_.reserved_range)))
        if oe.options.allow_alias != re_.options.allow_alias:
            report.error("%s: allow_alias differs" % name)


def compare_with_spec(ours, spec, report):
    where = ours.name
    if _syntax(ours) != spec["syntax"]:
        report.error("%s: syntax %s, expected %s" % (where, _syntax(ours), spec["syntax"]))
    if ours.package != spec["package"]:
        report.error("%s: package %r, expected %r" % (where, ours.package, spec["package"]))
    msgs = dict(_walk_messages(ours.package, ours.message_type))
    for name in sorted(set(spec["messages"]) - set(msgs)):
        report.error("%s: message %s missing" % (where, name))
    for name in sorted(set(msgs) - set(spec["messages"])):
        report.error("%s: message %s not in upstream" % (where, name))
    for name, fields in sorted(spec["messages"].items()):
        if name not in msgs:
            continue
        report.checked_messages += 1
        m = msgs[name]
        if m.options.map_entry != (name in spec["map_entries"]):
            report.error("%s: map_entry flag wrong" % name)
        got = {f.number: f for f in m.field}
        want = {w[0]: w for w in fields}
        if set(got) != set(want):
            report.error("%s: field numbers %s, expected %s" % (name, sorted(got), sorted(want)))
        for num in sorted(set(got) & set(want)):
            report.checked_fields += 1
            k = _field_key(ours, m, got[num])
            _, wname, wlabel, wtype, wtn, woneof, wpacked = want[num]
            exp = {"name": wname, "label": FDP.Label.Name(wlabel), "type": FDP.Type.Name(wtype),
                   "type_name": wtn, "oneof": woneof, "packed": wpacked}
            for attr, val in exp.items():
                if k[attr] != val:
                    report.error("%s field %d: %s %r, expected %r" % (name, num, attr, k[attr], val))


def _build_pool(fds):
    """A private pool holding our files (plus well-known imports if absent)."""
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in fds.file}
    added = set()

    def add(name):
        if name in added:
            return
        if name in by_name:
            fdp = by_name[name]
        else:  # e.g. google/protobuf/any.proto when built without --include_imports
            fdp = descriptor_pb2.FileDescriptorProto()
            descriptor_pool.Default().FindFileByName(name).CopyToProto(fdp)
        for dep in fdp.dependency:
            add(dep)
        pool.Add(fdp)
        added.add(name)

    for name in by_name:
        add(name)
    return pool


# Upstream messages written as text; each is serialized by the upstream class,
# parsed by ours, and both renderings must agree.
_CROSS_SAMPLES = [
    ("tensorflow.metadata.v0.Schema", "tensorflow_metadata.proto.v0.schema_pb2", """
feature { name: "age" type: INT int_domain { min: 0 max: 120 } presence { min_fraction: 1 min_count: 1 }
          value_count { min: 1 max: 1 } lifecycle_stage: PRODUCTION
          drift_comparator { jensen_shannon_divergence { threshold: 0.1 source { type: QUANTILES } } } }
feature { name: "kind" type: BYTES domain: "kind" skew_comparator { infinity_norm { threshold: 0.01 } }
          distribution_constraints { min_domain_mass: 0.9 } not_in_environment: "SERVING" }
feature { name: "ts" type: INT time_domain { integer_format: UNIX_DAYS } }
feature { name: "s" type: STRUCT struct_domain { feature { name: "x" type: FLOAT
          float_domain { min: -1 max: 1 disallow_nan: true } shape { dim { size: 3 } } } } }
string_domain { name: "kind" value: "a" value: "b" is_categorical: CATEGORICAL_YES }
sparse_feature { name: "sp" index_feature { name: "i" } value_feature { name: "v" }
                 dense_shape { dim { size: 10 } } is_sorted: true }
weighted_feature { name: "w" feature { step: "kind" } weight_feature { step: "age" } }
default_environment: "TRAINING"
dataset_constraints { num_examples_drift_comparator { min_fraction_threshold: 0.5 } min_examples_count: 10 }
annotation { tag: "t" comment: "c" }
tensor_representation_group { key: "" value { tensor_representation { key: "r" value {
  ragged_tensor { feature_path { step: "s" } partition { uniform_row_length: 2 } row_partition_dtype: INT32 } } } } }
"""),
    ("tensorflow.metadata.v0.DatasetFeatureStatisticsList",
     "tensorflow_metadata.proto.v0.statistics_pb2", """
datasets { name: "train" num_examples: 3 weighted_num_examples: 2.5
  features { path { step: "age" } type: INT num_stats {
    common_stats { num_non_missing: 3 min_num_values: 1 max_num_values: 1 avg_num_values: 1 tot_num_values: 3
      num_values_histogram { buckets { low_value: 1 high_value: 1 sample_count: 1 } type: QUANTILES }
      presence_and_valency_stats { num_non_missing: 3 min_num_values: 1 } }
    mean: 40 std_dev: 5 num_zeros: 0 min: 30 median: 40 max: 50
    histograms { num_nan: 1 buckets { low_value: 30 high_value: 50 sample_count: 3 } name: "h" } } }
  features { name: "kind" type: STRING string_stats { unique: 2 top_values { value: "a" frequency: 2 }
    avg_length: 1 rank_histogram { buckets { low_rank: 0 high_rank: 0 label: "a" sample_count: 2 } }
    invalid_utf8_count: 1 }
    custom_stats { name: "c" num: 1.5 } }
  cross_features { path_x { step: "a" } path_y { step: "b" } count: 3
    num_cross_stats { correlation: 0.5 covariance: 1 } } }
"""),
    ("tensorflow.metadata.v0.Anomalies", "tensorflow_metadata.proto.v0.anomalies_pb2", """
baseline { feature { name: "age" type: INT } }
anomaly_name_format: SERIALIZED_PATH
anomaly_info { key: "age" value { path { step: "age" } severity: ERROR description: "d" short_description: "s"
  reason { type: FEATURE_TYPE_LOW_FRACTION_PRESENT short_description: "s" description: "d" }
  reason { type: MULTIPLE_REASONS }
  diff_regions { changed { left_start: 1 left_contents: "x" right_start: 1 right_contents: "y" } } } }
dataset_anomaly_info { severity: WARNING reason { type: DATASET_LOW_NUM_EXAMPLES } }
data_missing: false
drift_skew_info { path { step: "age" } drift_measurements { type: JENSEN_SHANNON_DIVERGENCE value: 0.2 threshold: 0.1 } }
"""),
]


def cross_parse(pool, report):
    for full_name, module_name, text in _CROSS_SAMPLES:
        ref_cls = getattr(importlib.import_module(module_name), full_name.rsplit(".", 1)[1])
        try:
            our_cls = _get_class(pool.FindMessageTypeByName(full_name))
        except KeyError:
            report.error("cross-parse: %s not defined by our files" % full_name)
            continue
        ref_msg = text_format.Parse(text, ref_cls())
        ours_from_wire = our_cls.FromString(ref_msg.SerializeToString(deterministic=True))
        ours_from_text = text_format.Parse(text, our_cls())
        want = text_format.MessageToString(ref_msg)
        if text_format.MessageToString(ours_from_wire) != want:
            report.error("cross-parse: %s differs after wire round trip" % full_name)
        if text_format.MessageToString(ours_from_text) != want:
            report.error("cross-parse: %s differs when parsing the same text" % full_name)
        back = ref_cls.FromString(ours_from_text.SerializeToString(deterministic=True))
        if back != ref_msg:
            report.error("cross-parse: %s written by ours is read differently upstream" % full_name)
        # proto2 defaults must agree too (e.g. Reason.type, min_domain_mass).
        if full_name.endswith("Anomalies"):
            if our_cls().dataset_anomaly_info.reason.add().type != 0:
                report.error("cross-parse: AnomalyInfo.Reason.type default is not UNKNOWN_TYPE")


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
    report = Report()

    for fname, module_name in TFMD_FILES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            sys.stderr.write("cannot import %s: %s\n" % (module_name, exc))
            return 2
        ref = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(ref)
        if fname not in ours:
            report.error("%s: not in the descriptor set" % fname)
            continue
        compare_files(ours[fname], ref, report)

    for fname, module_name in TF_FILES.items():
        if fname not in ours:
            report.error("%s: not in the descriptor set" % fname)
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            compare_with_spec(ours[fname], TF_EXAMPLE_SPEC[fname], report)
            continue
        ref = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(ref)
        compare_files(ours[fname], ref, report)

    return finish(report, fds, cross_parse)


def finish(report, fds, cross_parse_fn):
    """Runs the cross-parse test when the descriptors matched, prints the report and
    returns the exit status (shared with check_tensorboard_compat.py)."""
    if not report.errors:
        try:
            cross_parse_fn(_build_pool(fds), report)
        except Exception as exc:  # noqa: BLE001
            report.error("cross-parse failed: %s: %s" % (type(exc).__name__, exc))

    for w in report.warnings:
        print("warning: " + w)
    for e in report.errors:
        print("MISMATCH: " + e)
    print("checked %d messages, %d fields, %d enums: %s"
          % (report.checked_messages, report.checked_fields, report.checked_enums,
             "%d mismatch(es)" % len(report.errors) if report.errors else "all compatible"))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

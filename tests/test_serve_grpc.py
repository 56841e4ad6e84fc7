"""End-to-end: `kiln serve --port` speaks KServe's v2 protocol over gRPC to Triton's own
Python client (tritonclient.grpc): readiness, metadata, inference with raw and typed
contents giving the REST API's scores, error statuses, and our .proto against the
descriptors tritonclient ships. On the same port, TF Serving's Predict and GetModelStatus,
called with grpcio and messages built from our descriptors."""
import csv
import os
import socket
import subprocess

import numpy as np
import pytest

from conftest import ROOT
from test_serve import CANCER, Server, call, train


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GrpcServer(Server):
    """`kiln serve` with both REST (self.port) and gRPC (self.grpc_port)."""

    def __init__(self, kiln_bin, *args):
        port = free_port()
        super().__init__(kiln_bin, "--port", port, *args)
        line = self.p.stdout.readline()
        assert f"gRPC on 127.0.0.1:{port} (KServe v2" in line, (line, self.p.stderr.read())
        self.grpc_port = port


@pytest.fixture
def served(kiln, kiln_bin, tmp_path):
    train(kiln, tmp_path / "models" / "cancer" / "1")
    s = GrpcServer(kiln_bin, "--model_name", "cancer", "--model_base_path",
                   tmp_path / "models" / "cancer")
    yield s
    if s.p.poll() is None:
        s.stop()


def cancer_rows(n):
    with open(CANCER, newline="") as f:
        return [{k: float(v) for k, v in r.items() if k != "diagnosis"}
                for r in list(csv.DictReader(f))[:n]]


def test_kserve_v2_over_grpc_with_tritonclient(served):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    s = served
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{s.grpc_port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cancer") and client.is_model_ready("cancer", "1")
    assert not client.is_model_ready("cancer", "7")
    server_meta = client.get_server_metadata(as_json=True)
    assert server_meta["name"] == "kiln"
    meta = client.get_model_metadata("cancer", as_json=True)
    assert meta["name"] == "cancer" and meta["versions"] == ["1"]
    assert meta["platform"].startswith("kiln_")
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("scores", "FP32"),
                                                                     ("class_ids", "INT64")]
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    # The REST metadata lists the same tensors.
    code, rest_meta = call(s.port, "/v2/models/cancer")
    assert code == 200
    assert [i["name"] for i in meta["inputs"]] == [i["name"] for i in rest_meta["inputs"]]

    rows = cancer_rows(12)
    inputs = []
    for spec in meta["inputs"]:
        t = grpcclient.InferInput(spec["name"], [len(rows)], "FP64")
        t.set_data_from_numpy(np.array([r[spec["name"]] for r in rows], dtype=np.float64))
        inputs.append(t)
    result = client.infer("cancer", inputs, request_id="r1")
    response = result.get_response()
    assert response.id == "r1" and response.model_name == "cancer"
    assert response.model_version == "1"
    scores = result.as_numpy("scores")
    class_ids = result.as_numpy("class_ids")
    assert scores.dtype == np.float32 and scores.shape == (12,)
    assert class_ids.dtype == np.int64 and class_ids.tolist() == [int(x >= 0.5) for x in scores]

    # The same rows over REST (v2 and TF Serving's v1): the same scores, to the bit.
    code, v2 = call(s.port, "/v2/models/cancer/infer", {"inputs": [
        {"name": k, "shape": [len(rows)], "datatype": "FP64", "data": [r[k] for r in rows]}
        for k in rows[0]]})
    assert code == 200, v2
    assert scores.tolist() == v2["outputs"][0]["data"]
    code, v1 = call(s.port, "/v1/models/cancer:predict", {"instances": rows})
    assert code == 200
    assert scores.tolist() == [p["scores"] for p in v1["predictions"]]

    # Only the outputs asked for; FP32 inputs feed the FP64 features too.
    narrow = []
    for t in meta["inputs"]:
        x = grpcclient.InferInput(t["name"], [len(rows), 1], "FP32")
        x.set_data_from_numpy(np.array([[r[t["name"]]] for r in rows], dtype=np.float32))
        narrow.append(x)
    only_ids = client.infer("cancer", narrow, model_version="1",
                            outputs=[grpcclient.InferRequestedOutput("class_ids")])
    assert only_ids.as_numpy("scores") is None
    assert only_ids.as_numpy("class_ids").shape == (12,)

    with pytest.raises(InferenceServerException) as e:
        client.infer("nope", inputs)
    assert e.value.status() == "StatusCode.NOT_FOUND" and "no model 'nope'" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer("cancer", inputs, model_version="9")
    assert e.value.status() == "StatusCode.NOT_FOUND"
    bad = grpcclient.InferInput("mean_radius", [1], "BYTES")
    bad.set_data_from_numpy(np.array([b"wide"], dtype=object))
    with pytest.raises(InferenceServerException) as e:
        client.infer("cancer", [bad] + inputs[1:])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "expected a number" in e.value.message()
    wrong_shape = grpcclient.InferInput("mean_radius", [3, 4], "FP64")
    wrong_shape.set_data_from_numpy(np.zeros((3, 4)))
    with pytest.raises(InferenceServerException) as e:
        client.infer("cancer", [wrong_shape])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "input 'mean_radius': shape [3, 4]; kiln takes [N] or [N, 1]" == e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer("cancer", inputs[:-1])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert f"missing input '{meta['inputs'][-1]['name']}'" in e.value.message()
    client.close()
    assert s.stop() == 0


def test_typed_contents_give_the_scores_raw_contents_give(served):
    """Typed contents (fp64_contents, int64_contents) straight through the generated stub."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    s = served
    rows = cancer_rows(5)
    names = list(rows[0])
    typed = service_pb2.ModelInferRequest(model_name="cancer")
    raw = service_pb2.ModelInferRequest(model_name="cancer")
    for name in names:
        values = [r[name] for r in rows]
        t = typed.inputs.add(name=name, datatype="FP64", shape=[len(rows)])
        t.contents.fp64_contents.extend(values)
        raw.inputs.add(name=name, datatype="FP64", shape=[len(rows)])
        raw.raw_input_contents.append(np.array(values, dtype="<f8").tobytes())
    # An integer datatype feeds a float feature as well.
    t = typed.inputs[0]
    t.datatype = "INT64"
    t.contents.Clear()
    t.contents.int64_contents.extend(int(r[names[0]]) for r in rows)
    raw.inputs[0].datatype = "INT64"
    raw.raw_input_contents[0] = np.array([int(r[names[0]]) for r in rows], dtype="<i8").tobytes()
    with grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        a = stub.ModelInfer(typed, timeout=30)
        b = stub.ModelInfer(raw, timeout=30)
        assert [o.name for o in a.outputs] == ["scores", "class_ids"]
        assert a.raw_output_contents == b.raw_output_contents
        assert np.frombuffer(a.raw_output_contents[0], "<f4").shape == (5,)
        # Values in a list the datatype does not use.
        typed.inputs[1].contents.fp32_contents.append(1.0)
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(typed, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "FP64 values go in fp64_contents, but it has 1 in fp32_contents" in e.value.details()


def test_a_taken_grpc_port_is_an_error(kiln, kiln_bin, tmp_path, served):
    p = subprocess.run([kiln_bin, "serve", "--rest_api_port", "0", "--port", str(served.grpc_port),
                        "--model_name", "cancer", "--model_base_path",
                        tmp_path / "models" / "cancer"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert f"cannot serve gRPC on 127.0.0.1:{served.grpc_port}" in p.stderr


def descriptor_pool_of_our_protos():
    from google.protobuf import descriptor_pb2, descriptor_pool

    desc = os.path.join(os.environ.get("KILN_BINARY_DIR", os.path.join(ROOT, "build")), "proto",
                        "kiln_protos.desc")
    fds = descriptor_pb2.FileDescriptorSet()
    with open(desc, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return pool


def test_tf_serving_predict_and_model_status_over_grpc(served):
    import grpc
    from google.protobuf.message_factory import GetMessageClass

    s = served
    pool = descriptor_pool_of_our_protos()
    msg = {n: GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving." + n))
           for n in ("PredictRequest", "PredictResponse", "GetModelStatusRequest",
                     "GetModelStatusResponse")}
    rows = cancer_rows(8)
    req = msg["PredictRequest"]()
    req.model_spec.name = "cancer"
    req.model_spec.signature_name = "serving_default"
    for i, name in enumerate(rows[0]):
        t = req.inputs[name]
        t.dtype = 2  # DT_DOUBLE
        t.tensor_shape.dim.add(size=len(rows))
        values = [r[name] for r in rows]
        if i % 2:  # half of them packed in tensor_content
            t.tensor_content = np.array(values, dtype="<f8").tobytes()
        else:
            t.double_val.extend(values)
    with grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}") as channel:
        predict = channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=msg["PredictResponse"].FromString)
        status = channel.unary_unary(
            "/tensorflow.serving.ModelService/GetModelStatus",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=msg["GetModelStatusResponse"].FromString)
        r = predict(req, timeout=30)
        assert r.model_spec.name == "cancer" and r.model_spec.version.value == 1
        assert sorted(r.outputs) == ["class_ids", "scores"]
        assert r.outputs["scores"].dtype == 1  # DT_FLOAT
        assert [d.size for d in r.outputs["scores"].tensor_shape.dim] == [8]
        code, v1 = call(s.port, "/v1/models/cancer:predict", {"instances": rows})
        assert code == 200
        assert list(r.outputs["scores"].float_val) == [p["scores"] for p in v1["predictions"]]
        assert list(r.outputs["class_ids"].int64_val) == [p["class_ids"] for p in v1["predictions"]]

        req.model_spec.version.value = 5
        with pytest.raises(grpc.RpcError) as e:
            predict(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        req.model_spec.ClearField("version")
        req.inputs["mean_radius"].dtype = 8  # DT_COMPLEX64
        with pytest.raises(grpc.RpcError) as e:
            predict(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "dtype DT_COMPLEX64 is not one kiln takes" in e.value.details()

        st = status(msg["GetModelStatusRequest"](model_spec={"name": "cancer"}), timeout=30)
        assert [(v.version, v.state, v.status.error_code) for v in st.model_version_status] == [
            (1, 30, 0)]  # AVAILABLE, OK
        with pytest.raises(grpc.RpcError) as e:
            status(msg["GetModelStatusRequest"](model_spec={"name": "nope"}), timeout=30)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        # TF Serving's other PredictionService methods are not served.
        classify = channel.unary_unary("/tensorflow.serving.PredictionService/Classify",
                                       request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            classify(b"", timeout=30)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_our_proto_matches_tritonclients():
    """Every message and field of proto/kserve/grpc_predict_v2.proto has the number, type and
    label of the same field in Triton's grpc_service.proto (as compiled into tritonclient)."""
    from tritonclient.grpc import service_pb2

    ours = descriptor_pool_of_our_protos().FindFileByName("kserve/grpc_predict_v2.proto")
    assert ours.package == "inference"

    def compare(mine, theirs):
        checked = 0
        for f in mine.fields:
            t = theirs.fields_by_name[f.name]
            assert (f.number, f.type, f.is_repeated) == (t.number, t.type, t.is_repeated), f.full_name
            if f.message_type is not None:
                assert f.message_type.full_name == t.message_type.full_name, f.full_name
            assert (f.containing_oneof and f.containing_oneof.name) == (
                t.containing_oneof and t.containing_oneof.name), f.full_name
            checked += 1
        for n in mine.nested_types:
            checked += compare(n, theirs.nested_types_by_name[n.name])
        return checked

    checked = 0
    for name, m in ours.message_types_by_name.items():
        checked += compare(m, service_pb2.DESCRIPTOR.message_types_by_name[name])
    assert checked > 50
    theirs = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in ours.services_by_name["GRPCInferenceService"].methods:
        t = theirs.methods_by_name[method.name]
        assert method.input_type.full_name == t.input_type.full_name
        assert method.output_type.full_name == t.output_type.full_name
    assert len(ours.services_by_name["GRPCInferenceService"].methods) == 6


def test_grpc_takes_the_same_api_keys_as_rest(kiln, kiln_bin, tmp_path):
    """`--auth api_key` guards gRPC as it guards REST: the probes stay open, every other
    RPC needs an accepted x-api-key in its metadata."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    train(kiln, tmp_path / "models" / "cancer" / "1")
    keys = tmp_path / "keys.txt"
    keys.write_text("k-grpc-5e1d0a\n")
    s = GrpcServer(kiln_bin, "--model_name", "cancer", "--model_base_path",
                   tmp_path / "models" / "cancer", "--auth=api_key", "--api_keys_file", keys)
    try:
        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{s.grpc_port}")
        assert client.is_server_live() and client.is_server_ready()
        for headers in (None, {"x-api-key": "k-wrong"}):
            with pytest.raises(InferenceServerException) as e:
                client.get_model_metadata("cancer", headers=headers)
            assert e.value.status() == "StatusCode.UNAUTHENTICATED", e.value
        meta = client.get_model_metadata("cancer", headers={"x-api-key": "k-grpc-5e1d0a"},
                                         as_json=True)
        assert meta["name"] == "cancer"
        assert call(s.port, "/v2/models/cancer")[0] == 401  # and REST alike
    finally:
        assert s.stop() == 0

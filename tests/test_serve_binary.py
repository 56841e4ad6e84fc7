"""End-to-end: KServe v2 REST's binary tensor data extension in `kiln serve`, through
Triton's own Python client (tritonclient.http with binary_data=True) and raw HTTP: binary
inputs (INT64, FP64, FP32, BYTES) and binary outputs give exactly what the JSON path gives,
the response carries Inference-Header-Content-Length and application/octet-stream, and
bodies whose sizes do not add up are 400s that say why."""
import json
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest

from test_serve import Server

CITIES = ["Oslo", "Lima", "Quito", "São Paulo"]


def rows(n, seed=0):
    """n rows of (age, income, city); y = buy when age > 40 and the city is not Lima."""
    out = []
    for i in range(seed, seed + n):
        age = 18 + (i * 7) % 60
        out.append((age, 100 + (i * 37) % 2000 + 0.5, CITIES[i % len(CITIES)]))
    return out


@pytest.fixture
def served(kiln, kiln_bin, tmp_path):
    data = tmp_path / "people.csv"
    with open(data, "w", encoding="utf-8") as f:
        f.write("age,income,city,y\n")
        for age, income, city in rows(400):
            f.write(f"{age},{income},{city},{'buy' if age > 40 and city != 'Lima' else 'skip'}\n")
    cfg = tmp_path / "people.yaml"
    cfg.write_text("label: y\ntask: binary\npositive_class: buy\n"
                   "model: {type: gbdt, num_rounds: 8}\ntraining: {checkpoint_every: 0}\n")
    kiln("train", "--config", cfg, "--data", data, "--out", tmp_path / "models" / "people" / "1",
         "-q", "--no-metadata")
    s = Server(kiln_bin, "--model_name", "people", "--model_base_path", tmp_path / "models" / "people")
    yield s
    if s.p.poll() is None:
        s.stop()


def infer_inputs(httpclient, batch, binary, income_dtype="FP64"):
    np_income = np.float64 if income_dtype == "FP64" else np.float32
    columns = [("age", "INT64", np.array([r[0] for r in batch], dtype=np.int64)),
               ("income", income_dtype, np.array([r[1] for r in batch], dtype=np_income)),
               ("city", "BYTES", np.array([r[2].encode() for r in batch], dtype=object))]
    inputs = []
    for i, (name, datatype, values) in enumerate(columns):
        t = httpclient.InferInput(name, [len(batch)], datatype)
        t.set_data_from_numpy(values, binary_data=binary[i] if isinstance(binary, list) else binary)
        inputs.append(t)
    return inputs


def test_binary_tensors_with_tritonclient_match_the_json_path(served):
    import tritonclient.http as httpclient

    s = served
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{s.port}")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("people")
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("age", "INT64"), ("income", "FP64"), ("city", "BYTES")]

    batch = rows(300, seed=1000)
    json_result = client.infer("people", infer_inputs(httpclient, batch, False), outputs=[
        httpclient.InferRequestedOutput("scores", binary_data=False),
        httpclient.InferRequestedOutput("class_ids", binary_data=False)])
    assert "parameters" not in json_result.get_response()["outputs"][0]
    scores = json_result.as_numpy("scores")
    class_ids = json_result.as_numpy("class_ids")
    assert scores.shape == (300,) and set(class_ids.tolist()) == {0, 1}
    assert class_ids.tolist() == [int(v >= 0.5) for v in scores.tolist()]

    # Every input and output in binary.
    result = client.infer("people", infer_inputs(httpclient, batch, True), request_id="b1", outputs=[
        httpclient.InferRequestedOutput("scores", binary_data=True),
        httpclient.InferRequestedOutput("class_ids", binary_data=True)])
    response = result.get_response()
    assert response["id"] == "b1"
    assert [(o["name"], o["datatype"], o["shape"], o["parameters"]) for o in response["outputs"]] == [
        ("scores", "FP32", [300], {"binary_data_size": 1200}),
        ("class_ids", "INT64", [300], {"binary_data_size": 2400})]
    assert all("data" not in o for o in response["outputs"])
    assert result.as_numpy("scores").dtype == np.float32
    np.testing.assert_array_equal(result.as_numpy("scores"), scores)
    np.testing.assert_array_equal(result.as_numpy("class_ids"), class_ids)

    # No outputs named: tritonclient asks for binary_data_output, every output in binary.
    # Incomes as FP32 (exact here), some inputs binary and some JSON.
    result = client.infer("people", infer_inputs(httpclient, batch, [False, True, True], "FP32"))
    assert [o["parameters"]["binary_data_size"] for o in result.get_response()["outputs"]] == [
        1200, 2400]
    np.testing.assert_array_equal(result.as_numpy("scores"), scores)
    np.testing.assert_array_equal(result.as_numpy("class_ids"), class_ids)

    # One output binary and one JSON.
    result = client.infer("people", infer_inputs(httpclient, batch, True), outputs=[
        httpclient.InferRequestedOutput("class_ids", binary_data=False),
        httpclient.InferRequestedOutput("scores", binary_data=True)])
    outputs = result.get_response()["outputs"]
    assert outputs[0]["data"] == class_ids.tolist() and "parameters" not in outputs[0]
    np.testing.assert_array_equal(result.as_numpy("scores"), scores)
    client.close()


def post(port, body, headers):
    """(status, headers, body bytes) of a POST to the people model's infer endpoint."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/people/infer", data=body,
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def binary_body(batch):
    """A request with every input binary and binary outputs, and its JSON header length."""
    age = struct.pack(f"<{len(batch)}q", *[r[0] for r in batch])
    income = struct.pack(f"<{len(batch)}d", *[r[1] for r in batch])
    city = b"".join(struct.pack("<I", len(c)) + c for c in (r[2].encode() for r in batch))
    header = json.dumps({"inputs": [
        {"name": n, "shape": [len(batch)], "datatype": d, "parameters": {"binary_data_size": len(b)}}
        for n, d, b in [("age", "INT64", age), ("income", "FP64", income), ("city", "BYTES", city)]],
        "parameters": {"binary_data_output": True}}).encode()
    return header + age + income + city, len(header), (len(age), len(income), len(city))


def test_binary_bodies_over_raw_http_and_their_errors(served):
    s = served
    batch = rows(5, seed=7)
    body, n, sizes = binary_body(batch)
    code, headers, out = post(s.port, body, {"Inference-Header-Content-Length": str(n),
                                             "Content-Type": "application/octet-stream"})
    assert code == 200, out
    assert headers["Content-Type"] == "application/octet-stream"
    head_len = int(headers["Inference-Header-Content-Length"])
    assert int(headers["Content-Length"]) == len(out) == head_len + 5 * 4 + 5 * 8
    head = json.loads(out[:head_len])
    assert [o["parameters"]["binary_data_size"] for o in head["outputs"]] == [20, 40]
    scores = struct.unpack("<5f", out[head_len:head_len + 20])
    class_ids = struct.unpack("<5q", out[head_len + 20:])
    assert list(class_ids) == [int(v >= 0.5) for v in scores]
    # The same rows as JSON: the same scores, bit for bit.
    code, _, js = post(s.port, json.dumps({"inputs": [
        {"name": "age", "shape": [5], "datatype": "INT64", "data": [r[0] for r in batch]},
        {"name": "income", "shape": [5], "datatype": "FP64", "data": [r[1] for r in batch]},
        {"name": "city", "shape": [5], "datatype": "BYTES", "data": [r[2] for r in batch]}]}).encode(),
        {})
    assert code == 200
    assert [struct.unpack("<f", struct.pack("<f", v))[0] for v in json.loads(js)["outputs"][0]["data"]] \
        == list(scores)

    def error(body, length):
        code, headers, out = post(s.port, body, {} if length is None else {
            "Inference-Header-Content-Length": str(length)})
        assert code == 400, out
        assert headers["Content-Type"] == "application/json"
        assert "Inference-Header-Content-Length" not in headers
        return json.loads(out)["error"]

    assert error(body, len(body) + 1) == (
        f"Inference-Header-Content-Length is {len(body) + 1} but the body has only {len(body)} bytes")
    assert error(body, "-3") == (
        "Inference-Header-Content-Length '-3' is not a byte count of the JSON request")
    assert error(body[:n], None).endswith(
        "but the request has no Inference-Header-Content-Length header to say where the JSON "
        "ends and the binary data begins")
    assert error(body + b"\0", n).startswith(
        f"1 bytes of the body's {sum(sizes) + 1} bytes of binary data belong to no input")
    assert error(body[:-1], n) == (
        f"input 'city': binary_data_size {sizes[2]} runs past the end of the body "
        f"({sizes[2] - 1} bytes of binary data are left for it)")
    # A BYTES length prefix that overruns the tensor's bytes.
    bad = body[:n + sizes[0] + sizes[1]] + struct.pack("<I", 1000) + body[n + sizes[0] + sizes[1] + 4:]
    assert "raw BYTES element 0 is 1000 bytes long" in error(bad, n)
    # binary_data_size that the shape and datatype do not fill.
    wrong = json.loads(body[:n])
    wrong["inputs"][0]["shape"] = [4]
    header = json.dumps(wrong).encode()
    assert error(header + body[n:], len(header)) == (
        f"input 'age': shape [4] of INT64 takes 32 bytes of raw contents, got 40 "
        f"(the binary data of binary_data_size 40)")
    # The server still answers.
    assert post(s.port, body, {"Inference-Header-Content-Length": str(n)})[0] == 200
    assert s.stop() == 0

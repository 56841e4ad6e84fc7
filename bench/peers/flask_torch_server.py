"""The hand-written peer of bench/serve_vs_peers: a kiln wide & deep bundle served the way a
team would serve it from Python, with Flask and PyTorch.

It loads the bundle's own files: transform.json (the fitted transform: vocabularies,
medians, means and standard deviations) and model/arch.json + model/weights.pt (kiln writes
the weights with libtorch's OutputArchive, a TorchScript archive Python's torch.jit.load
reads). It rebuilds the same network as an nn.Module, loads those weights, and before
serving checks the bundle's warm-up rows score what kiln scored them (kiln's tolerance,
1e-5 + 1e-4 x |expected|), so both servers run the same model on the same features.

Per request, as in kiln: parse the JSON body, transform each instance (fill + zscore for
numbers, vocabulary lookup for strings), build the tensors, forward under torch.no_grad(),
and answer TF Serving's row format: {"predictions": [{"class_ids": 0, "scores": 0.14}]}.
Only the ops kiln's defaults use for this data (fill, zscore, vocabulary) are implemented;
a bundle with others is refused at start. One torch thread (torch.set_num_threads(1)).

Flask's built-in threaded server (per-request logging off):
  /usr/bin/python3 bench/peers/flask_torch_server.py --bundle DIR --port 8601
gunicorn (the bundle from KILN_PEER_BUNDLE; each worker loads it after the fork):
  KILN_PEER_BUNDLE=DIR gunicorn -w 2 -b 127.0.0.1:8601 --chdir bench/peers \
      flask_torch_server:app
"""
import argparse
import json
import logging
import math
import os
import sys

import flask
import torch

torch.set_num_threads(1)


class WideDeep(torch.nn.Module):
    """kiln's wide_deep network (src/kiln/model/torch/torch_models.cc, NetImpl) under the
    same parameter names, so weights.pt's tensors load by name."""

    def __init__(self, arch):
        super().__init__()
        cards, dense_dim, outputs = arch["cardinalities"], arch["dense_dim"], arch["num_outputs"]
        self.wide_bias = torch.nn.Parameter(torch.zeros(outputs))
        self.wide_dense = torch.nn.Linear(dense_dim, outputs, bias=False) if dense_dim else None
        offsets, total = [], 0
        for c in cards:
            offsets.append(total)
            total += c
        self.register_buffer("wide_offsets", torch.tensor(offsets, dtype=torch.int64),
                             persistent=False)
        self.wide_ids = torch.nn.Embedding(total, outputs) if cards else None
        self.embeddings = []
        width = dense_dim
        for j, (c, d) in enumerate(zip(cards, arch["embedding_dims"])):
            e = torch.nn.Embedding(c, d)
            setattr(self, f"embedding{j}", e)
            self.embeddings.append(e)
            width += d
        self.hidden = []
        for i, h in enumerate(arch["hidden_units"]):
            layer = torch.nn.Linear(width, h)
            setattr(self, f"hidden{i}", layer)
            self.hidden.append(layer)
            width = h
        self.deep_out = torch.nn.Linear(width, outputs)
        self.activation = torch.tanh if arch["activation"] == "tanh" else torch.relu

    def forward(self, dense, ids):
        logits = self.wide_bias.expand(dense.shape[0], -1)
        if self.wide_dense is not None:
            logits = self.wide_dense(dense) + self.wide_bias
        if self.wide_ids is not None:
            logits = logits + self.wide_ids(ids + self.wide_offsets).sum(1)
        h = torch.cat([dense] + [e(ids[:, j]) for j, e in enumerate(self.embeddings)], 1)
        for layer in self.hidden:
            h = self.activation(layer(h))
        return logits + self.deep_out(h)


class Transform:
    """transform.json's fitted features, applied to one JSON instance at a time."""

    def __init__(self, spec):
        self.dense, self.categorical = [], []
        by_name = {f["name"]: f for f in spec["features"]}
        if spec.get("crosses"):
            raise ValueError("crosses are not implemented by this peer")
        for out in spec["outputs"]:
            f = by_name[out["name"]]
            if out["kind"] == "dense":
                fill, mean, std = None, 0.0, 1.0
                for op in f["ops"]:
                    if op["op"] == "fill":
                        fill = op["value"]
                    elif op["op"] == "zscore":
                        mean, std = op["mean"], op["std"] if op["std"] > 0 else 1.0
                    else:
                        raise ValueError(f"{f['name']}: op {op['op']} is not implemented")
                self.dense.append((f["name"], fill, mean, std))
            else:
                (op,) = f["ops"]
                if op["op"] != "vocabulary" or op["oov_buckets"] != 1:
                    raise ValueError(f"{f['name']}: only vocabulary with one OOV bucket")
                vocab = {t: i for i, t in enumerate(op["tokens"])}
                self.categorical.append((f["name"], vocab, len(vocab), out["missing_id"]))

    def apply(self, instances):
        dense, ids = [], []
        for row in instances:
            d = []
            for name, fill, mean, std in self.dense:
                x = row.get(name)
                if x is None or (isinstance(x, float) and not math.isfinite(x)):
                    x = fill if fill is not None else 0.0
                d.append((float(x) - mean) / std)
            dense.append(d)
            r = []
            for name, vocab, oov, missing in self.categorical:
                v = row.get(name)
                if isinstance(v, float) and v.is_integer():
                    v = int(v)  # kiln reads a JSON 42.0 as the text "42"
                r.append(missing if v is None else vocab.get(str(v), oov))
            ids.append(r)
        return (torch.tensor(dense, dtype=torch.float32),
                torch.tensor(ids, dtype=torch.int64))


class Model:
    def __init__(self, bundle):
        manifest = json.load(open(os.path.join(bundle, "manifest.json")))
        arch = json.load(open(os.path.join(bundle, "model", "arch.json")))
        if arch["type"] != "wide_deep" or arch["task"] != "binary":
            raise ValueError(f"{bundle}: a binary wide_deep bundle is needed, not "
                             f"{arch['task']} {arch['type']}")
        self.transform = Transform(json.load(open(os.path.join(bundle, "transform.json"))))
        self.net = WideDeep(arch)
        saved = torch.jit.load(os.path.join(bundle, "model", "weights.pt"))
        self.net.load_state_dict({k: v for k, v in saved.state_dict().items()}, strict=True)
        self.net.eval()
        self.classes = manifest["config"]["classes"]
        with open(os.path.join(bundle, "warmup.jsonl")) as f:
            for line in f:
                w = json.loads(line)
                got = self.predict([w["inputs"]])[0]["scores"]
                want = w["expected"][0]
                if abs(got - want) > 1e-5 + 1e-4 * abs(want):
                    raise ValueError(f"warm-up row scored {got}, kiln scored {want}")

    def predict(self, instances):
        dense, ids = self.transform.apply(instances)
        with torch.no_grad():
            scores = torch.sigmoid(self.net(dense, ids)).squeeze(1).tolist()
        return [{"class_ids": int(s > 0.5), "scores": s} for s in scores]


def create_app(bundle):
    model = Model(bundle)
    # bench/serve_vs_peers waits for this line from every worker before measuring.
    print(f"flask_torch_server: ready (pid {os.getpid()})", file=sys.stderr, flush=True)
    app = flask.Flask(__name__)

    @app.post("/v1/models/<name>:predict")
    def predict(name):
        body = flask.request.get_json(force=True)
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            return flask.jsonify(error="'instances' must be a non-empty list"), 400
        try:
            return flask.jsonify(predictions=model.predict(instances))
        except (TypeError, ValueError) as e:
            return flask.jsonify(error=str(e)), 400

    @app.get("/v1/models/<name>")
    def status(name):
        return flask.jsonify(model_version_status=[{"version": "1", "state": "AVAILABLE"}])

    return app


# gunicorn's entry point: the bundle comes from the environment.
app = create_app(os.environ["KILN_PEER_BUNDLE"]) if "KILN_PEER_BUNDLE" in os.environ else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    create_app(a.bundle).run(host="127.0.0.1", port=a.port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Trains small PyTorch models on breast_cancer.csv (or digits.csv) and saves them with
torch.jit.save, as a team training in Python would; writes the reference scores PyTorch
itself gives the rows. Runs under Debian's python3-torch (/usr/bin/python3).

  make_torchscript.py DATA.csv LABEL OUT_DIR

Writes OUT_DIR/{binary_logits,binary_probs,multiclass,regression}.pt and
OUT_DIR/expected.json: per model, the scores for every row of DATA.csv."""
import csv
import json
import os
import sys

import torch


class Binary(torch.nn.Module):
    """A logistic regression over standardised inputs; logits or probabilities out."""

    def __init__(self, mu, sd, probabilities: bool):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)
        self.linear = torch.nn.Linear(mu.shape[0], 1)
        self.probabilities = probabilities

    def forward(self, x):
        z = self.linear((x - self.mu) / self.sd).squeeze(1)
        if self.probabilities:
            return torch.sigmoid(z)
        return z


class Multi(torch.nn.Module):
    """Three classes by the quantile of a hidden layer's output: softmax probabilities."""

    def __init__(self, mu, sd):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)
        self.hidden = torch.nn.Linear(mu.shape[0], 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        return torch.softmax(self.out(torch.tanh(self.hidden((x - self.mu) / self.sd))), dim=1)


class Regression(torch.nn.Module):
    def __init__(self, mu, sd):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)
        self.linear = torch.nn.Linear(mu.shape[0], 1)

    def forward(self, x):
        return self.linear((x - self.mu) / self.sd)  # [rows, 1]


def main():
    data, label, out = sys.argv[1], sys.argv[2], sys.argv[3]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    with open(data, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    li = header.index(label)
    x = torch.tensor([[float(v) for i, v in enumerate(r) if i != li] for r in rows])
    y = torch.tensor([1.0 if r[li] == "malignant" else 0.0 for r in rows])
    mu, sd = x.mean(0), x.std(0)
    models = {
        "binary_logits": Binary(mu, sd, False),
        "binary_probs": Binary(mu, sd, True),
        "multiclass": Multi(mu, sd),
        "regression": Regression(mu, sd),
    }
    # Only the binary models are fitted (a few Adam steps); the others keep their random
    # initialisation: what matters here is that kiln computes what PyTorch computes.
    for name in ("binary_logits", "binary_probs"):
        m = models[name]
        opt = torch.optim.Adam(m.parameters(), lr=0.05)
        for _ in range(100):
            opt.zero_grad()
            z = m.linear((x - m.mu) / m.sd).squeeze(1)
            torch.nn.functional.binary_cross_entropy_with_logits(z, y).backward()
            opt.step()
    expected = {}
    with torch.no_grad():
        for name, m in models.items():
            m.eval()
            scripted = torch.jit.script(m)
            scripted.save(os.path.join(out, f"{name}.pt"))
            s = scripted(x)
            if name == "binary_logits":
                s = torch.sigmoid(s)
            if name == "regression":
                s = s.squeeze(1)
            expected[name] = s.tolist()
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"inputs": [h for i, h in enumerate(header) if i != li],
                   "scores": expected}, f)


if __name__ == "__main__":
    main()

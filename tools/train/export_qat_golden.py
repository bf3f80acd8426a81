"""Exports the fixture of the Rust test that the int8 executor computes what the PyTorch
fake-quant model of `qat.py` computes (detector/tests/qat_golden.rs).

    python tools/train/export_qat_golden.py --out detector/tests/fixtures/qat_golden

From a fixed seed: the small golden config with one PFN layer (16 channels), random
weights with non-trivial BatchNorm statistics, ranges observed on random pillars (so
nothing is clipped by construction), then the fake-quant model in eval mode on other
random pillars. Writes the QAT export (`model.json`, `model.safetensors` with BatchNorm
folded, `qat_ranges.json`) and `golden.safetensors` (features, coords (z, y, x),
num_points, and the head maps cls_preds / box_preds / dir_cls_preds [H, W, *]).
"""

from __future__ import annotations

import copy
import json

import torch
from safetensors.torch import save_file

import export_golden as G
import model as M
import qat as Q

SEED = 20261126


def config() -> dict:
    cfg = copy.deepcopy(G.CONFIG)
    cfg["vfe"]["num_filters"] = [16]
    return cfg


def main() -> None:
    out, g = G.start(__doc__, SEED)
    cfg = config()
    net = M.PointPillar(cfg)
    with torch.no_grad():
        G.randomize_norms(net, g)
    net.eval()
    qat = Q.QatPointPillar(net)
    with torch.no_grad():
        qat.train()
        for _ in range(4):
            features, coords, _ = G.pillars(cfg, g)
            batch = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32), coords], dim=1)
            qat(features, batch)
        qat.eval()
        for p in qat.attention.parameters():  # fp16 weights, as the executor stores them
            p.copy_(p.half().float())
        features, coords, num_points = G.pillars(cfg, g)
        batch = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32), coords], dim=1)
        head = qat(features, batch)
    (out / "model.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_file(qat.export_state(), str(out / "model.safetensors"))
    (out / "qat_ranges.json").write_text(json.dumps(qat.export_ranges(), indent=1) + "\n")
    golden = {"features": features, "coords": coords, "num_points": num_points, **{k: v[0] for k, v in head.items()}}
    save_file({k: v.contiguous() for k, v in golden.items()}, str(out / "golden.safetensors"))
    print({k: tuple(v.shape) for k, v in golden.items()})


if __name__ == "__main__":
    main()

"""Quantization-aware fine-tuning that mirrors lidarq's int8 executor, and its export.

    python tools/train/qat.py --model models/pointpillars-demo --data data/train \
        --val-data data/val --out models/pointpillars-demo-qat --epochs 1

The fake-quantized network computes what the Rust executor computes for the default plan
(docs/QUANTIZATION.md), with a straight-through estimator for the gradients:

* BatchNorm folded into the preceding linear / conv / transposed conv, frozen (as the
  executor folds it at load);
* weights int8 symmetric per output channel, `[-127, 127]`, scale `amax / 127`;
* activations int8 affine per tensor over `[min, max]` widened to contain 0
  (`QuantParams::from_range`): scale `(max - min) / 255`, zero point
  `-128 - round(min / scale)`; rounding half away from zero, saturation;
* the decorated point features per channel, their scales folded into the first PFN layer's
  weights before those are quantized (as the executor does); the PFN output quantized before the max over points (max commutes with the
  monotone quantization) and the scatter sharing its parameters (empty cells are the zero
  point, real 0); every conv output after its ReLU; the attention block in fp16 (input,
  output and — at export — weights rounded to f16) with its output quantized for the int8
  deblock after it; the three deblock outputs
  sharing the concat's parameters; head outputs not requantized (dequantized from i32).

Ranges are exponential moving averages of each tensor's min and max during fine-tuning.
The export is a model folder (`model.json`, `model.safetensors` with the folded weights
under OpenPCDet names and identity BatchNorm) plus `qat_ranges.json` — the activation
ranges by layer name and per input channel — which `lidarq import-qat` turns into the
quantized artifact that `lidarq eval --compare fp32 int8-qat` runs.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
import torch.nn.functional as F

import kitti_data as D
import model as M
import train as TR

QMIN, QMAX = -128, 127
EMA = 0.01
INIT_BATCHES = 16


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def act_params(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """QuantParams::from_range(lo, hi, Affine, Int8) in float32, elementwise."""
    lo = torch.clamp(lo, max=0.0)
    hi = torch.clamp(hi, min=0.0)
    scale = ((hi - lo) / float(QMAX - QMIN)).float()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zp = torch.clamp(QMIN - round_half_away(lo / scale), QMIN, QMAX)
    return scale, zp


def fake_quant(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """dequantize(quantize(x)) with a straight-through gradient inside the range."""
    v = x / scale
    q = torch.clamp(round_half_away(v) + zp, qmin, qmax)
    out = (q - zp) * scale
    inside = ((v + zp) >= qmin - 0.5) & ((v + zp) <= qmax + 0.5)
    return x * inside + (out - x * inside).detach()


def round_f16(x: torch.Tensor) -> torch.Tensor:
    """f16 storage of an fp16 layer's input and output (straight-through)."""
    return x + (x.half().float() - x).detach()


def fq_weight(w: torch.Tensor, out_axis: int = 0) -> torch.Tensor:
    dims = [d for d in range(w.dim()) if d != out_axis]
    amax = w.detach().abs().amax(dim=dims, keepdim=True)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    return fake_quant(w, scale, torch.zeros_like(scale), -127, 127)


class RangeObserver(nn.Module):
    """EMA min / max of a tensor (per channel of the last axis when `channels` is given)."""

    def __init__(self, channels: int = 0):
        super().__init__()
        shape = (channels,) if channels else ()
        self.register_buffer("lo", torch.zeros(shape))
        self.register_buffer("hi", torch.zeros(shape))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))
        self.per_channel = bool(channels)

    def observe(self, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1, x.shape[-1]) if self.per_channel else x.detach().reshape(-1)
        lo, hi = flat.min(dim=0).values, flat.max(dim=0).values
        if not bool(self.seen):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.seen.fill_(True)
        else:
            self.lo.mul_(1 - EMA).add_(EMA * lo)
            self.hi.mul_(1 - EMA).add_(EMA * hi)

    def forward(self, x: torch.Tensor, observe: bool) -> torch.Tensor:
        if observe:
            self.observe(x)
        scale, zp = act_params(self.lo, self.hi)
        return fake_quant(x, scale, zp, QMIN, QMAX)

    def range(self) -> list:
        return [self.lo.tolist(), self.hi.tolist()]


def fold(weight: torch.Tensor, bn: nn.BatchNorm1d | nn.BatchNorm2d, out_axis: int):
    s = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    shape = [1] * weight.dim()
    shape[out_axis] = -1
    return weight.detach() * s.reshape(shape), bn.bias.detach() - bn.running_mean * s


class QatPointPillar(nn.Module):
    """A trained `model.PointPillar` with BatchNorm folded and fake quantization inserted."""

    def __init__(self, net: M.PointPillar):
        super().__init__()
        self.cfg = net.cfg
        cfg = net.cfg
        assert len(net.vfe.pfn_layers) == 1, "QAT mirrors a single PFN layer"
        pfn = net.vfe.pfn_layers[0]
        w, b = fold(pfn.linear.weight, pfn.norm, 0)
        self.pfn_w, self.pfn_b = nn.Parameter(w), nn.Parameter(b)
        self.scatter = net.map_to_bev_module
        self.convs = nn.ParameterList()
        self.layout = []  # per block: [(conv index, stride, pad)] ; attention after block i
        for bi, block in enumerate(net.backbone_2d.blocks):
            entries = []
            mods = list(block)
            for mi, m in enumerate(mods):
                if isinstance(m, nn.Conv2d):
                    w, b = fold(m.weight, mods[mi + 1], 0)
                    entries.append((f"backbone_2d.blocks.{bi}.{mi}", len(self.convs), m.stride[0], m.padding[0]))
                    self.convs.append(nn.Parameter(w))
                    self.convs.append(nn.Parameter(b))
            self.layout.append(entries)
        self.deconvs = nn.ParameterList()
        self.deconv_strides = []
        for block in net.backbone_2d.deblocks:
            w, b = fold(block[0].weight, block[1], 1)
            self.deconvs.append(nn.Parameter(w))
            self.deconvs.append(nn.Parameter(b))
            self.deconv_strides.append(block[0].stride[0])
        self.attention_block = net.backbone_2d.attention_block
        self.attention = net.backbone_2d.attention if self.attention_block is not None else None
        self.head = net.dense_head
        self.obs = nn.ModuleDict()
        self.obs["input"] = RangeObserver(M.decorated_feature_count(cfg))
        self.obs["vfe_pfn_layers_0"] = RangeObserver()
        for entries in self.layout:
            for name, *_ in entries:
                self.obs[name.replace(".", "_")] = RangeObserver()
        if self.attention is not None:
            self.obs["backbone_2d_attention"] = RangeObserver()
        self.obs["backbone_2d_concat"] = RangeObserver()

    def forward(self, features, coords, batch_size: int = 1, num_points=None):
        """num_points is unused: QAT runs the padded PFN, as the int8 executor does."""
        observe = self.training
        x = self.obs["input"](features, observe)
        # The executor folds the input's per-channel scales into the weights and quantizes
        # those per output channel: W' = W * s, then y = q(W') (x_q - zp) = (q(W') / s) x.
        s_in, _ = act_params(self.obs["input"].lo, self.obs["input"].hi)
        w = fq_weight(self.pfn_w * s_in[None, :]) / s_in[None, :]
        x = F.relu(F.linear(x, w, self.pfn_b))
        x = self.obs["vfe_pfn_layers_0"](x, observe).max(dim=1)[0]
        x = self.scatter(x, coords, batch_size)
        ups = []
        for bi, entries in enumerate(self.layout):
            for name, ci, stride, pad in entries:
                x = F.relu(F.conv2d(x, fq_weight(self.convs[ci]), self.convs[ci + 1], stride=stride, padding=pad))
                x = self.obs[name.replace(".", "_")](x, observe)
            if bi == self.attention_block:
                x = self.obs["backbone_2d_attention"](round_f16(self.attention(round_f16(x))), observe)
            w, b = self.deconvs[2 * bi], self.deconvs[2 * bi + 1]
            s = self.deconv_strides[bi]
            ups.append(F.relu(F.conv_transpose2d(x, fq_weight(w, 1), b, stride=s)))
        concat = self.obs["backbone_2d_concat"]
        if observe:  # one range for the deblock outputs and the concat
            concat.observe(torch.cat([u.detach().reshape(-1) for u in ups]))
        x = torch.cat([concat(u, False) for u in ups], dim=1)
        return self.head(x, fq_weight)

    def export_state(self) -> dict[str, torch.Tensor]:
        """OpenPCDet-named state of the folded weights, with identity BatchNorm."""
        net = M.PointPillar(self.cfg)
        sd = net.state_dict()
        eps = M.BN_EPS

        def put_bn(prefix: str, bias: torch.Tensor):
            n = bias.numel()
            sd[f"{prefix}.weight"] = torch.ones(n)
            sd[f"{prefix}.bias"] = bias.detach().cpu().clone()
            sd[f"{prefix}.running_mean"] = torch.zeros(n)
            sd[f"{prefix}.running_var"] = torch.full((n,), 1.0 - eps)

        sd["vfe.pfn_layers.0.linear.weight"] = self.pfn_w.detach().cpu().clone()
        put_bn("vfe.pfn_layers.0.norm", self.pfn_b)
        for bi, entries in enumerate(self.layout):
            for name, ci, _, _ in entries:
                sd[f"{name}.weight"] = self.convs[ci].detach().cpu().clone()
                mi = int(name.rsplit(".", 1)[1])
                put_bn(f"backbone_2d.blocks.{bi}.{mi + 1}", self.convs[ci + 1])
        for bi in range(len(self.deconv_strides)):
            sd[f"backbone_2d.deblocks.{bi}.0.weight"] = self.deconvs[2 * bi].detach().cpu().clone()
            put_bn(f"backbone_2d.deblocks.{bi}.1", self.deconvs[2 * bi + 1])
        renames = {"attention.": "backbone_2d.attention.", "head.": "dense_head."}
        for k, v in self.state_dict().items():
            for prefix, target in renames.items():
                if k.startswith(prefix):
                    sd[target + k[len(prefix):]] = v.detach().cpu().clone()
        return {k: v.contiguous() for k, v in sd.items()}

    def export_ranges(self) -> dict:
        tensors = {"vfe.pfn_layers.0": self.obs["vfe_pfn_layers_0"].range()}
        tensors["map_to_bev_module"] = tensors["vfe.pfn_layers.0"]
        for entries in self.layout:
            for name, *_ in entries:
                tensors[name] = self.obs[name.replace(".", "_")].range()
        if self.attention is not None:
            tensors["backbone_2d.attention"] = self.obs["backbone_2d_attention"].range()
        concat = self.obs["backbone_2d_concat"].range()
        for bi in range(len(self.deconv_strides)):
            tensors[f"backbone_2d.deblocks.{bi}.0"] = concat
        tensors["backbone_2d.concat"] = concat
        lo, hi = self.obs["input"].range()
        return {"input_channels": [[a, b] for a, b in zip(lo, hi)], "tensors": tensors}


def load_model(model_dir: Path) -> M.PointPillar:
    cfg = M.load_config(model_dir / "model.json")
    net = M.PointPillar(cfg)
    net.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="trained fp32 model folder")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--val-data", type=Path)
    ap.add_argument("--val-frames", type=int, default=200)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    net = load_model(args.model).eval()
    qat = QatPointPillar(net).to(device)
    cfg = net.cfg
    classes = cfg["class_names"]
    train_ds = TR.FrameDataset(TR.load_cache(args.data, "train", classes, args.workers), cfg, True, args.seed + 100, D.AugmentConfig())
    val_cache = TR.load_cache(args.val_data or args.data, "val", classes, args.workers)
    val_ds = torch.utils.data.Subset(TR.FrameDataset(val_cache, cfg, False, args.seed, D.AugmentConfig()), range(min(args.val_frames, len(val_cache.ids))))
    val_dl = TR.loader(val_ds, args.batch_size, False, args.workers, args.seed)
    # Attention LayerNorm / dropout-free modules stay in eval mode; only the observers'
    # training flag matters, and BatchNorm no longer exists.
    params = [p for p in qat.parameters() if p.requires_grad]
    steps = (len(train_ds) // args.batch_size) * args.epochs
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    # Initial ranges: the float model's EMA min / max over the first batches, no updates.
    qat.train()
    with torch.no_grad():
        for i, batch in enumerate(TR.loader(train_ds, args.batch_size, True, args.workers, args.seed)):
            feats, coords, lab = (t.to(device) for t in batch[:3])
            qat(feats, coords, lab.shape[0])
            if i + 1 == INIT_BATCHES:
                break
    before = TR.validate(qat, val_dl, device, len(classes))
    print("fake-quant val loss before QAT:", json.dumps(before), flush=True)
    log = {"args": {k: str(v) for k, v in vars(args).items()}, "before": before, "epochs": []}
    t0, step = time.time(), 0
    for epoch in range(args.epochs):
        train_ds.epoch = epoch
        qat.train()
        sums, n = {}, 0
        for batch in TR.prefetched(TR.loader(train_ds, args.batch_size, True, args.workers, args.seed + epoch)):
            TR.train_step(qat, batch, device, len(classes), opt, sched, sums)
            step += 1
            n += 1
            if n % 50 == 0:
                print(f"qat epoch {epoch + 1} step {n} loss {sum(sums.values()) / n:.4f}", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        val = TR.validate(qat, val_dl, device, len(classes))
        log["epochs"].append({"train": {k: v / max(n, 1) for k, v in sums.items()}, "val": val})
        print(json.dumps(log["epochs"][-1]), flush=True)
    log["seconds"] = time.time() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(qat.export_state(), str(args.out / "model.safetensors"))
    (args.out / "model.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (args.out / "qat_ranges.json").write_text(json.dumps(qat.export_ranges(), indent=1) + "\n")
    (args.out / "qat_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"QAT done in {log['seconds'] / 60:.1f} min -> {args.out}")


if __name__ == "__main__":
    main()

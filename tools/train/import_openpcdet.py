"""Converts an OpenPCDet checkpoint (.pth) into the safetensors file the Rust detector reads.

    python tools/train/import_openpcdet.py pointpillar_7728.pth model/model.safetensors

An OpenPCDet checkpoint is a zip of pickles holding {'model_state': state_dict, 'optimizer_state',
'epoch', ...}; a bare state_dict is accepted too. It is read with `torch.load(weights_only=True)`,
which refuses arbitrary pickled code. Tensor names are kept as they are (OpenPCDet's names are the
detector's), a DistributedDataParallel `module.` prefix is removed, floating tensors are written as
contiguous float32, and integer bookkeeping buffers (`num_batches_tracked`, `global_step`) are
dropped. `lidarq import` runs this script, writes the model config beside the weights and checks
that every tensor the config needs is present with the right shape.

Why Python: no maintained Rust crate reads PyTorch's pickled checkpoints robustly (candle-core's
pickle reader covers common state dicts but would pull a whole tensor framework into the build).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file

DDP_PREFIX = "module."


def convert(state: dict) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        if name.startswith(DDP_PREFIX):
            name = name[len(DDP_PREFIX):]
        out[name] = value.detach().to(torch.float32).contiguous()
    return out


def load_state(path: Path) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, dict) and "model_state" in ckpt:
        return ckpt["model_state"]
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise SystemExit(f"{path}: neither an OpenPCDet checkpoint (no 'model_state') nor a state_dict")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    tensors = convert(load_state(args.checkpoint))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out))
    print(f"{len(tensors)} tensors -> {args.out}")


if __name__ == "__main__":
    main()

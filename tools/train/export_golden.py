"""Exports the golden fixtures of the Rust detector test (detector/tests/golden_fp32.rs).

    python tools/train/export_golden.py --out detector/tests/fixtures/golden

Writes, from a fixed seed:
  model.json          a small config: 2 PFN layers, 2 backbone blocks, attention on block 1
                      with windows that do not tile the map, 3 classes x 2 rotations
  model.safetensors   randomly initialised weights with non-trivial BatchNorm statistics,
                      OpenPCDet names (num_batches_tracked included, as in checkpoints)
  golden.safetensors  the input pillars (features [P, M, C] decorated with padded slots
                      zero, coords [P, 3] (z, y, x) int32, num_points [P] int32), the
                      intermediate tensors, maps channels-last (pillar_features,
                      backbone_2d.attention, spatial_features_2d), the head maps
                      (cls_preds, box_preds, dir_cls_preds [H, W, *]) and the detections
                      after NMS (det_boxes [N, 7], det_scores [N], det_labels [N] int32)

The pillar features are random rather than voxelized points: the network does not care
how the decoration was computed, and the voxelizer has its own golden test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import model as M

SEED = 20240611
NUM_PILLARS = 900
LOGIT_STD = 3.0
PASSING = 80  # anchors whose score is at least 0.5

CONFIG = {
    "class_names": ["Car", "Pedestrian", "Cyclist"],
    "voxel": {
        "point_cloud_range": [0.0, -10.24, -3.0, 10.24, 10.24, 1.0],
        "voxel_size": [0.32, 0.32, 4.0],
        "max_points_per_voxel": 4,
        "max_voxels": {"train": 1000, "test": 2000},
        "num_point_features": 4,
    },
    "vfe": {"num_filters": [32, 16], "use_norm": True, "with_distance": False, "use_absolute_xyz": True},
    "map_to_bev": {"num_bev_features": 16},
    "backbone_2d": {
        "layer_nums": [1, 2],
        "layer_strides": [2, 2],
        "num_filters": [16, 32],
        "upsample_strides": [1, 2],
        "num_upsample_filters": [16, 16],
        "attention": {"block": 1, "num_heads": 4, "window_size": 6},
    },
    "dense_head": {
        "use_direction_classifier": True,
        "dir_offset": 0.78539,
        "dir_limit_offset": 0.0,
        "num_dir_bins": 2,
        "anchor_generator": [
            {"class_name": "Car", "anchor_sizes": [[3.9, 1.6, 1.56]], "anchor_rotations": [0, 1.57],
             "anchor_bottom_heights": [-1.78], "align_center": False, "feature_map_stride": 2,
             "matched_threshold": 0.6, "unmatched_threshold": 0.45},
            {"class_name": "Pedestrian", "anchor_sizes": [[0.8, 0.6, 1.73]], "anchor_rotations": [0, 1.57],
             "anchor_bottom_heights": [-0.6], "align_center": False, "feature_map_stride": 2,
             "matched_threshold": 0.5, "unmatched_threshold": 0.35},
            {"class_name": "Cyclist", "anchor_sizes": [[1.76, 0.6, 1.73]], "anchor_rotations": [0, 1.57],
             "anchor_bottom_heights": [-0.6], "align_center": True, "feature_map_stride": 2,
             "matched_threshold": 0.5, "unmatched_threshold": 0.35},
        ],
    },
    "post_processing": {"score_thresh": 0.45, "nms_thresh": 0.01, "nms_pre_maxsize": 60, "nms_post_maxsize": 20},
}


def randomize_norms(net: torch.nn.Module, g: torch.Generator) -> None:
    """BatchNorm/LayerNorm statistics and affine parameters far from the identity."""
    for mod in net.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
            mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            mod.num_batches_tracked.fill_(1234)
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=g) * 0.2)


def pillars(cfg: dict, g: torch.Generator):
    nx, ny, _ = M.grid_size(cfg)
    m, c = cfg["voxel"]["max_points_per_voxel"], M.decorated_feature_count(cfg)
    cells = torch.randperm(nx * ny, generator=g)[:NUM_PILLARS]
    coords = torch.stack([torch.zeros_like(cells), cells // nx, cells % nx], dim=1).to(torch.int32)
    num_points = torch.randint(1, m + 1, (NUM_PILLARS,), generator=g, dtype=torch.int32)
    num_points[:10] = m  # some full pillars (no padded slot)
    features = torch.randn(NUM_PILLARS, m, c, generator=g) * 2.0
    features *= (torch.arange(m)[None, :] < num_points[:, None]).unsqueeze(-1).float()
    return features, coords, num_points


def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t[0].permute(1, 2, 0).contiguous()


def start(doc: str, seed: int) -> tuple[Path, torch.Generator]:
    """The `--out` folder of a fixture exporter (created), with torch seeded."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    return out, torch.Generator().manual_seed(seed)


def main() -> None:
    out, g = start(__doc__, SEED)

    cfg = CONFIG
    net = M.PointPillar(cfg)
    with torch.no_grad():
        randomize_norms(net, g)
    net.eval()

    features, coords, num_points = pillars(cfg, g)
    batch_coords = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32), coords], dim=1)
    with torch.no_grad():
        # Spread the class logits (std LOGIT_STD per channel) and centre them low, so that the scores
        # that pass the threshold are far apart (no near-ties whose order fp32 rounding
        # could flip) and only a minority of anchors passes it.
        cls = net(features, batch_coords)["cls_preds"] - net.dense_head.conv_cls.bias
        scale = LOGIT_STD / cls.reshape(-1, cls.shape[-1]).std(dim=0)
        net.dense_head.conv_cls.weight.mul_(scale[:, None, None, None])
        best = (cls * scale).reshape(-1, len(cfg["class_names"])).max(dim=1)[0]
        net.dense_head.conv_cls.bias.fill_(-float(best.topk(PASSING).values[-1]))
    taps = {}
    net.backbone_2d.attention.register_forward_hook(lambda _m, _i, out: taps.__setitem__("attention", out))
    with torch.no_grad():
        pillar_features = net.vfe(features)
        spatial = net.map_to_bev_module(pillar_features, batch_coords, 1)
        spatial_2d = net.backbone_2d(spatial)
        head = net.dense_head(spatial_2d)

    head_np = {k: v[0].numpy() for k, v in head.items()}
    cls, boxes = M.decode_boxes(cfg, head_np, M.generate_anchors(cfg))
    dets = M.post_process(cfg, cls, boxes)
    print(f"{len(dets)} detections; head map {tuple(head['cls_preds'].shape[1:3])}")

    (out / "model.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "model.safetensors"))
    golden = {
        "features": features,
        "coords": coords,
        "num_points": num_points,
        "pillar_features": pillar_features,
        "backbone_2d.attention": nhwc(taps["attention"]),
        "spatial_features_2d": nhwc(spatial_2d),
        **{k: v[0] for k, v in head.items()},
        "det_boxes": torch.from_numpy(np.stack([d[2] for d in dets]).astype(np.float32)),
        "det_scores": torch.tensor([d[1] for d in dets], dtype=torch.float32),
        "det_labels": torch.tensor([d[0] for d in dets], dtype=torch.int32),
    }
    save_file({k: v.contiguous() for k, v in golden.items()}, str(out / "golden.safetensors"))


if __name__ == "__main__":
    main()

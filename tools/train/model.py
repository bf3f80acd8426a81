"""PointPillars in PyTorch: the reference network of the Rust detector and the training model.

The module tree and parameter names follow OpenPCDet's state_dict exactly
(`vfe.pfn_layers.0.linear.weight`, `backbone_2d.blocks.0.1.weight`,
`backbone_2d.deblocks.0.0.weight`, `dense_head.conv_cls.weight`, ...) so that OpenPCDet
checkpoints and ours are interchangeable. The one addition is the optional windowed BEV
attention block, `backbone_2d.attention.*`:

    norm.weight, norm.bias   LayerNorm over channels, eps 1e-5          [C]
    qkv.weight, qkv.bias     Linear C -> 3C, output rows q | k | v      [3C, C], [3C]
    proj.weight, proj.bias   Linear C -> C                              [C, C], [C]

It runs on the output of `backbone_2d.blocks.<block>` (before its deblock) as
`x + proj(attention(LN(x)))`, multi-head self-attention within non-overlapping
`window_size x window_size` windows tiled from the top-left corner; windows at the right
and bottom edges are smaller (padding tokens never take part). Head h uses channels
`h*d .. (h+1)*d` of q, k and v, with d = C / num_heads and logits scaled by d^-0.5.

The model reads the JSON config of the Rust detector (`detector/src/config.rs`), takes
*decorated* pillar features (what the voxelizer writes: padded slots zero) and returns the
head maps channels-last, like OpenPCDet's AnchorHeadSingle. Anchors, box decoding and
NMS are here too, in numpy, as the reference of the Rust post-processing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
LN_EPS = 1e-5


def load_config(path: str | Path) -> dict:
    with open(path) as f:
        return json.load(f)


def grid_size(cfg: dict) -> tuple[int, int, int]:
    """(nx, ny, nz) of the voxel grid, rounded like OpenPCDet."""
    r, v = cfg["voxel"]["point_cloud_range"], cfg["voxel"]["voxel_size"]
    return tuple(int(round((r[i + 3] - r[i]) / v[i])) for i in range(3))


def decorated_feature_count(cfg: dict) -> int:
    vfe = cfg["vfe"]
    n = cfg["voxel"]["num_point_features"] + (6 if vfe["use_absolute_xyz"] else 3)
    return n + (1 if vfe["with_distance"] else 0)


class PFNLayer(nn.Module):
    """Linear (no bias with BN) + BatchNorm1d + ReLU per point, then max over the pillar."""

    def __init__(self, in_channels: int, out_channels: int, use_norm: bool, last_layer: bool):
        super().__init__()
        self.last_vfe = last_layer
        self.use_norm = use_norm
        if not last_layer:
            out_channels //= 2
        self.linear = nn.Linear(in_channels, out_channels, bias=not use_norm)
        if use_norm:
            self.norm = nn.BatchNorm1d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor, num_points: torch.Tensor | None = None) -> torch.Tensor:
        if num_points is not None and self.training and self.use_norm and self.last_vfe:
            return self._forward_real_points(x, num_points)
        p, m, _ = x.shape
        x = self.linear(x)
        if self.use_norm:
            x = self.norm(x.reshape(p * m, -1)).reshape(p, m, -1)
        x = F.relu(x)
        x_max = x.max(dim=1, keepdim=True)[0]
        if self.last_vfe:
            return x_max
        return torch.cat([x, x_max.expand(-1, m, -1)], dim=2)

    def _forward_real_points(self, x: torch.Tensor, num_points: torch.Tensor) -> torch.Tensor:
        """The training forward of the padded layer computed on the real points only.

        Most of the [P, M] slots are padding (zero features), and every padded slot comes
        out of linear + BatchNorm + ReLU as the same per-channel value relu(BN(0)). So the
        batch statistics are the real rows' sums over P * M rows, and a pillar's max is
        the max of its real points and, if it has padding, that value. Same outputs,
        running statistics and gradients as the padded forward (up to float rounding),
        at a fraction of its cost on a CPU."""
        p, m, _ = x.shape
        real = torch.arange(m, device=x.device)[None, :] < num_points[:, None]
        y = self.linear(x[real])
        rows = p * m
        mean = y.sum(0) / rows
        var = (y * y).sum(0) / rows - mean * mean
        bn = self.norm
        with torch.no_grad():
            bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * mean)
            bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * var * rows / max(rows - 1, 1))
            bn.num_batches_tracked.add_(1)
        gain = bn.weight * torch.rsqrt(var + bn.eps)
        shift = bn.bias - mean * gain
        y = F.relu(y * gain + shift)
        padded = (num_points < m)[:, None]
        base = torch.where(padded, F.relu(shift).expand(p, -1), torch.full_like(shift, -torch.inf).expand(p, -1))
        pillar = torch.arange(p, device=x.device)[:, None].expand(p, m)[real]
        return base.scatter_reduce(0, pillar[:, None].expand_as(y), y, reduce="amax", include_self=True)[:, None, :]


class PillarVFE(nn.Module):
    """PFN layers over decorated pillar features [P, M, C_in] -> pillar features [P, C]."""

    def __init__(self, cfg: dict):
        super().__init__()
        filters = [decorated_feature_count(cfg)] + list(cfg["vfe"]["num_filters"])
        n = len(filters) - 1
        self.pfn_layers = nn.ModuleList(
            PFNLayer(filters[i], filters[i + 1], cfg["vfe"]["use_norm"], i == n - 1) for i in range(n)
        )

    def forward(self, features: torch.Tensor, num_points: torch.Tensor | None = None) -> torch.Tensor:
        """num_points [P] (optional) lets a single-layer VFE train on the real points only."""
        for pfn in self.pfn_layers:
            features = pfn(features, num_points if len(self.pfn_layers) == 1 else None)
        return features.squeeze(1)


class PointPillarScatter(nn.Module):
    """Pillar features [P, C] + coords [P, 4] (batch, z, y, x) -> BEV map [B, C, ny, nx]."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.num_bev_features = cfg["map_to_bev"]["num_bev_features"]
        self.nx, self.ny, self.nz = grid_size(cfg)
        assert self.nz == 1, "PointPillars needs one voxel along z"

    def forward(self, pillar_features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        # Channels-last storage: a pillar's features are one contiguous row, and the convs
        # after it (oneDNN on a CPU) run fastest in that layout.
        out = pillar_features.new_zeros(batch_size, self.ny * self.nx, self.num_bev_features)
        flat = (coords[:, 1] + coords[:, 2] * self.nx + coords[:, 3]).long()
        out[coords[:, 0].long(), flat] = pillar_features
        return out.view(batch_size, self.ny, self.nx, self.num_bev_features).permute(0, 3, 1, 2)


class WindowAttention(nn.Module):
    """Pre-norm multi-head self-attention in non-overlapping windows, with a residual."""

    def __init__(self, channels: int, num_heads: int, window_size: int):
        super().__init__()
        assert channels % num_heads == 0, "channels must divide into heads"
        self.num_heads = num_heads
        self.window_size = window_size
        self.norm = nn.LayerNorm(channels, eps=LN_EPS)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws, nh = self.window_size, self.num_heads
        d = c // nh
        ph, pw = (-h) % ws, (-w) % ws
        t = self.norm(x.permute(0, 2, 3, 1))
        t = F.pad(t, (0, 0, 0, pw, 0, ph))
        valid = F.pad(x.new_ones(b, h, w), (0, pw, 0, ph)) > 0
        hh, ww = (h + ph) // ws, (w + pw) // ws

        def windows(a: torch.Tensor) -> torch.Tensor:
            a = a.reshape(b, hh, ws, ww, ws, -1).permute(0, 1, 3, 2, 4, 5)
            return a.reshape(b * hh * ww, ws * ws, -1)

        qkv = self.qkv(windows(t)).reshape(-1, ws * ws, 3, nh, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = (q @ k.transpose(-2, -1)) * d**-0.5
        key_ok = windows(valid.unsqueeze(-1)).squeeze(-1)[:, None, None, :]
        attn = logits.masked_fill(~key_ok, float("-inf")).softmax(dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(-1, ws * ws, c)
        o = self.proj(o).reshape(b, hh, ww, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        o = o.reshape(b, hh * ws, ww * ws, c)[:, :h, :w]
        return x + o.permute(0, 3, 1, 2)


def _bn2d(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class BaseBEVBackbone(nn.Module):
    """Strided conv blocks, one deblock (ConvTranspose2d, kernel = stride) per block, concat."""

    def __init__(self, cfg: dict):
        super().__init__()
        bb = cfg["backbone_2d"]
        c_in = [cfg["map_to_bev"]["num_bev_features"], *bb["num_filters"][:-1]]
        self.blocks = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        for i, (n, s, c) in enumerate(zip(bb["layer_nums"], bb["layer_strides"], bb["num_filters"])):
            # OpenPCDet pads with a ZeroPad2d(1) at index 0; the conv's own padding is the same
            # math without a padded copy of the map (which also breaks channels-last), and the
            # Identity keeps the state_dict indices (`blocks.0.1.weight`).
            layers = [nn.Identity(), nn.Conv2d(c_in[i], c, 3, stride=s, padding=1, bias=False), _bn2d(c), nn.ReLU()]
            for _ in range(n):
                layers += [nn.Conv2d(c, c, 3, padding=1, bias=False), _bn2d(c), nn.ReLU()]
            self.blocks.append(nn.Sequential(*layers))
            u, cu = bb["upsample_strides"][i], bb["num_upsample_filters"][i]
            self.deblocks.append(nn.Sequential(nn.ConvTranspose2d(c, cu, u, stride=u, bias=False), _bn2d(cu), nn.ReLU()))
        att = bb.get("attention")
        self.attention_block = att["block"] if att else None
        if att:
            self.attention = WindowAttention(bb["num_filters"][att["block"]], att["num_heads"], att["window_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ups = []
        for i, (block, deblock) in enumerate(zip(self.blocks, self.deblocks)):
            x = block(x)
            if i == self.attention_block:
                x = self.attention(x)
            ups.append(deblock(x))
        return torch.cat(ups, dim=1) if len(ups) > 1 else ups[0]


def anchors_per_location(cfg: dict) -> int:
    return sum(
        len(a["anchor_sizes"]) * len(a["anchor_rotations"]) * len(a["anchor_bottom_heights"])
        for a in cfg["dense_head"]["anchor_generator"]
    )


class AnchorHeadSingle(nn.Module):
    """1x1 convs for class logits, box residuals and direction logits."""

    def __init__(self, cfg: dict, in_channels: int):
        super().__init__()
        head = cfg["dense_head"]
        a = anchors_per_location(cfg)
        self.conv_cls = nn.Conv2d(in_channels, a * len(cfg["class_names"]), 1)
        self.conv_box = nn.Conv2d(in_channels, a * 7, 1)
        self.conv_dir_cls = nn.Conv2d(in_channels, a * head["num_dir_bins"], 1) if head["use_direction_classifier"] else None

    def forward(self, x: torch.Tensor, weight_fn=lambda w: w) -> dict[str, torch.Tensor]:
        """The three 1x1 convs run as one matrix product over the channels-last pixels (one
        pass over the input, and a GEMM backward, far faster than a 1x1 conv's on a CPU);
        `weight_fn` transforms the stacked weights (QAT fake-quantizes them per output
        channel, which is the same per conv)."""
        convs = {"cls_preds": self.conv_cls, "box_preds": self.conv_box}
        if self.conv_dir_cls is not None:
            convs["dir_cls_preds"] = self.conv_dir_cls
        weight = weight_fn(torch.cat([c.weight for c in convs.values()]))
        b, ch, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(b * h * w, ch)
        y = F.linear(pixels, weight.reshape(len(weight), ch), torch.cat([c.bias for c in convs.values()]))
        parts = y.reshape(b, h, w, -1).split([c.out_channels for c in convs.values()], dim=-1)
        return {k: v.contiguous() for k, v in zip(convs, parts)}


class PointPillar(nn.Module):
    """vfe -> map_to_bev_module -> backbone_2d -> dense_head, OpenPCDet's module names."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.vfe = PillarVFE(cfg)
        self.map_to_bev_module = PointPillarScatter(cfg)
        self.backbone_2d = BaseBEVBackbone(cfg)
        self.dense_head = AnchorHeadSingle(cfg, sum(cfg["backbone_2d"]["num_upsample_filters"]))

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int = 1,
                num_points: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """features [P, M, C_in] decorated, coords [P, 4] (batch, z, y, x) -> head maps [B, H, W, *];
        num_points [P] (optional) speeds up training (see PFNLayer)."""
        bev = self.map_to_bev_module(self.vfe(features, num_points), coords, batch_size)
        return self.dense_head(self.backbone_2d(bev))


# ---- post-processing reference (numpy, float32 like the Rust detector) ----


def generate_anchors(cfg: dict) -> np.ndarray:
    """Anchors [H, W, A, 7] of the head map: AnchorGenerator, classes then sizes then rotations."""
    r = cfg["voxel"]["point_cloud_range"]
    nx, ny, _ = grid_size(cfg)
    per_class = []
    for a in cfg["dense_head"]["anchor_generator"]:
        fx, fy = nx // a["feature_map_stride"], ny // a["feature_map_stride"]
        if a["align_center"]:
            sx, sy = (r[3] - r[0]) / fx, (r[4] - r[1]) / fy
            ox, oy = sx / 2, sy / 2
        else:
            sx, sy = (r[3] - r[0]) / (fx - 1), (r[4] - r[1]) / (fy - 1)
            ox = oy = 0.0
        xs = (r[0] + ox + sx * np.arange(fx, dtype=np.float64)).astype(np.float32)
        ys = (r[1] + oy + sy * np.arange(fy, dtype=np.float64)).astype(np.float32)
        sizes = np.asarray(a["anchor_sizes"], np.float32)
        rots = np.asarray(a["anchor_rotations"], np.float32)
        for zb in a["anchor_bottom_heights"]:
            out = np.zeros((fy, fx, len(sizes), len(rots), 7), np.float32)
            out[..., 0] = xs[None, :, None, None]
            out[..., 1] = ys[:, None, None, None]
            out[..., 3:6] = sizes[None, None, :, None, :]
            out[..., 2] = np.float32(zb) + out[..., 5] / np.float32(2)
            out[..., 6] = rots[None, None, None, :]
            per_class.append(out.reshape(fy, fx, -1, 7))
    return np.concatenate(per_class, axis=2)


def limit_period(val: np.ndarray, offset: float, period: float) -> np.ndarray:
    return val - np.floor(val / np.float32(period) + np.float32(offset)) * np.float32(period)


def decode_boxes(cfg: dict, head: dict[str, np.ndarray], anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head maps of one frame [H, W, *] -> (class logits [N, K], boxes [N, 7]) in anchor order."""
    k = len(cfg["class_names"])
    a = anchors.reshape(-1, 7)
    t = head["box_preds"].reshape(-1, 7)
    diag = np.sqrt(a[:, 3] ** 2 + a[:, 4] ** 2)
    boxes = np.empty_like(a)
    boxes[:, 0] = t[:, 0] * diag + a[:, 0]
    boxes[:, 1] = t[:, 1] * diag + a[:, 1]
    boxes[:, 2] = t[:, 2] * a[:, 5] + a[:, 2]
    boxes[:, 3:6] = np.exp(t[:, 3:6]) * a[:, 3:6]
    boxes[:, 6] = t[:, 6] + a[:, 6]
    dh = cfg["dense_head"]
    if dh["use_direction_classifier"]:
        dir_labels = head["dir_cls_preds"].reshape(len(a), -1).argmax(axis=1)
        period = np.float32(2 * np.pi / dh["num_dir_bins"])
        rot = limit_period(boxes[:, 6] - np.float32(dh["dir_offset"]), dh["dir_limit_offset"], period)
        boxes[:, 6] = rot + np.float32(dh["dir_offset"]) + period * dir_labels.astype(np.float32)
    return head["cls_preds"].reshape(len(a), k), boxes


def bev_corners(box: np.ndarray) -> np.ndarray:
    """The 4 BEV corners of [x, y, z, dx, dy, dz, yaw], counter-clockwise, float64."""
    x, y, dx, dy, yaw = (float(box[i]) for i in (0, 1, 3, 4, 6))
    c, s = math.cos(yaw), math.sin(yaw)
    local = [(dx / 2, dy / 2), (-dx / 2, dy / 2), (-dx / 2, -dy / 2), (dx / 2, -dy / 2)]
    return np.array([(x + c * u - s * v, y + s * u + c * v) for u, v in local])


def _clip(poly: list, a: np.ndarray, b: np.ndarray) -> list:
    """Sutherland-Hodgman: keep the part of `poly` left of the directed edge a -> b."""

    def side(p):
        return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])

    out = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        sp, sq = side(p), side(q)
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def _area(poly: list) -> float:
    return 0.5 * abs(sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1]))) if poly else 0.0


def bev_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Exact IoU of two rotated BEV rectangles (convex polygon clipping, float64)."""
    pa, pb = bev_corners(a), bev_corners(b)
    poly = [tuple(p) for p in pa]
    for i in range(4):
        poly = _clip(poly, pb[i], pb[(i + 1) % 4])
        if not poly:
            return 0.0
    inter = _area(poly)
    union = float(a[3]) * float(a[4]) + float(b[3]) * float(b[4]) - inter
    return inter / union if union > 0 else 0.0


def post_process(cfg: dict, cls_logits: np.ndarray, boxes: np.ndarray) -> list[tuple[int, float, np.ndarray]]:
    """Class-agnostic NMS like OpenPCDet: sigmoid, max over classes, score threshold, top
    NMS_PRE_MAXSIZE, greedy rotated BEV NMS (suppress IoU > thresh), NMS_POST_MAXSIZE.
    Ties in score keep anchor order (a stable sort). Returns (class index, score, box)."""
    pp = cfg["post_processing"]
    with np.errstate(over="ignore"):  # exp overflows to inf for very negative logits: score 0
        probs = 1.0 / (1.0 + np.exp(-cls_logits.astype(np.float32)))
    label = probs.argmax(axis=1)
    score = probs.max(axis=1)
    idx = np.nonzero(score >= np.float32(pp["score_thresh"]))[0]
    order = idx[np.argsort(-score[idx], kind="stable")][: pp["nms_pre_maxsize"]]
    keep: list[int] = []
    for i in order:
        if all(bev_iou(boxes[i], boxes[j]) <= pp["nms_thresh"] for j in keep):
            keep.append(int(i))
            if len(keep) == pp["nms_post_maxsize"]:
                break
    return [(int(label[i]), float(score[i]), boxes[i]) for i in keep]

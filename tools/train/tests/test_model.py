"""The PyTorch reference network: OpenPCDet's tensor names, exact layer maths, window
attention against a per-window loop, anchors, box decoding, NMS, and the checkpoint importer."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import export_golden  # noqa: E402
import import_openpcdet  # noqa: E402
import model as M  # noqa: E402

CFG = export_golden.CONFIG


def kitti_cfg() -> dict:
    cfg = copy.deepcopy(CFG)
    cfg["voxel"].update(point_cloud_range=[0, -39.68, -3, 69.12, 39.68, 1], voxel_size=[0.16, 0.16, 4])
    cfg["vfe"]["num_filters"] = [64]
    cfg["map_to_bev"]["num_bev_features"] = 64
    cfg["backbone_2d"] = {"layer_nums": [3, 5, 5], "layer_strides": [2, 2, 2], "num_filters": [64, 128, 256],
                          "upsample_strides": [1, 2, 4], "num_upsample_filters": [128, 128, 128]}
    for a in cfg["dense_head"]["anchor_generator"]:
        a["align_center"] = False
    return cfg


def test_state_dict_names_are_openpcdets():
    names = set(M.PointPillar(kitti_cfg()).state_dict())
    for n in ["vfe.pfn_layers.0.linear.weight", "vfe.pfn_layers.0.norm.running_var",
              "backbone_2d.blocks.0.1.weight", "backbone_2d.blocks.0.2.running_mean",
              "backbone_2d.blocks.0.4.weight", "backbone_2d.blocks.2.16.weight",
              "backbone_2d.deblocks.0.0.weight", "backbone_2d.deblocks.2.1.bias",
              "dense_head.conv_cls.weight", "dense_head.conv_box.bias", "dense_head.conv_dir_cls.weight"]:
        assert n in names, n
    assert "vfe.pfn_layers.0.linear.bias" not in names
    assert not any(n.startswith("backbone_2d.attention") for n in names)
    shapes = {k: tuple(v.shape) for k, v in M.PointPillar(kitti_cfg()).state_dict().items()}
    assert shapes["vfe.pfn_layers.0.linear.weight"] == (64, 10)
    assert shapes["backbone_2d.deblocks.2.0.weight"] == (256, 128, 4, 4)
    assert shapes["dense_head.conv_cls.weight"] == (18, 384, 1, 1)


def test_pfn_takes_the_max_over_padded_slots_too():
    torch.manual_seed(0)
    layer = M.PFNLayer(3, 2, use_norm=True, last_layer=True).eval()
    layer.norm.running_mean.copy_(torch.tensor([0.5, -1.0]))
    layer.norm.bias.data.copy_(torch.tensor([2.0, -3.0]))
    x = torch.zeros(1, 2, 3)
    x[0, 0] = torch.tensor([1.0, 0.0, 0.0])
    out = layer(x)[0, 0]
    bn = layer.norm
    y = (layer.linear.weight @ x[0].T).T  # [2 slots, 2 channels]
    ref = torch.relu((y - bn.running_mean) / torch.sqrt(bn.running_var + 1e-3) * bn.weight + bn.bias).max(0)[0]
    torch.testing.assert_close(out, ref)


def test_window_attention_equals_a_loop_over_windows():
    torch.manual_seed(1)
    att = M.WindowAttention(8, num_heads=2, window_size=3).eval()
    x = torch.randn(1, 8, 5, 7)
    out = att(x)
    ref = x.clone()
    t = att.norm(x[0].permute(1, 2, 0))
    for wy in range(0, 5, 3):
        for wx in range(0, 7, 3):
            tok = t[wy:wy + 3, wx:wx + 3].reshape(-1, 8)
            q, k, v = att.qkv(tok).split(8, dim=-1)
            heads = []
            for h in range(2):
                s = slice(4 * h, 4 * h + 4)
                a = torch.softmax(q[:, s] @ k[:, s].T / 2.0, dim=-1)
                heads.append(a @ v[:, s])
            o = att.proj(torch.cat(heads, dim=-1))
            hh, ww = min(3, 5 - wy), min(3, 7 - wx)
            ref[0, :, wy:wy + hh, wx:wx + ww] += o.reshape(hh, ww, 8).permute(2, 0, 1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_kitti_anchors_and_head_shapes():
    cfg = kitti_cfg()
    a = M.generate_anchors(cfg)
    assert a.shape == (248, 216, 6, 7)
    np.testing.assert_allclose(a[0, 0, 0], [0, -39.68, -1.0, 3.9, 1.6, 1.56, 0], atol=1e-6)
    np.testing.assert_allclose(a[-1, -1, 5, :2], [69.12, 39.68], atol=1e-4)
    assert a[0, 0, 1, 6] == np.float32(1.57)


def test_decode_and_direction_bins():
    cfg = copy.deepcopy(CFG)
    anchors = np.array([[[[1, 2, -1, 3, 4, 2, 0.5]]]], np.float32)
    head = {"box_preds": np.array([0.2, -0.1, 0.5, 0, np.log(2), 0, 0.25], np.float32),
            "cls_preds": np.zeros(3, np.float32), "dir_cls_preds": np.array([0.0, 1.0], np.float32)}
    _, boxes = M.decode_boxes(cfg, head, anchors)
    np.testing.assert_allclose(boxes[0, :6], [2, 1.5, 0, 3, 8, 2], atol=1e-6)
    # yaw 0.75 is just below the offset 0.78539, so limit_period wraps it up by π; bin 1
    # adds another π.
    np.testing.assert_allclose(boxes[0, 6], 0.75 + 2 * np.pi, atol=1e-5)


def test_bev_iou_and_nms():
    sq = np.array([0, 0, 0, 2, 2, 1, 0], np.float32)
    shifted = sq.copy()
    shifted[0] = 1
    assert M.bev_iou(sq, shifted) == pytest.approx(1 / 3)
    rot = sq.copy()
    rot[6] = np.pi / 4
    octagon = 8 * (np.sqrt(2) - 1)
    assert M.bev_iou(sq, rot) == pytest.approx(octagon / (8 - octagon), rel=1e-6)
    cfg = copy.deepcopy(CFG)
    cfg["post_processing"].update(score_thresh=0.5, nms_thresh=0.01, nms_pre_maxsize=10, nms_post_maxsize=10)
    far = sq.copy()
    far[0] = 10
    logits = np.array([[3.0, 0, 0], [0, 4.0, 0], [-5, -5, -5], [0, 0, 1.0]], np.float32)
    dets = M.post_process(cfg, logits, np.stack([sq, shifted, far, far]))
    assert [(d[0], round(d[1], 4)) for d in dets] == [(1, 0.982), (2, 0.7311)]


def test_importer_strips_ddp_prefix_and_integer_buffers(tmp_path):
    net = M.PointPillar(CFG)
    state = {"module." + k: v for k, v in net.state_dict().items()}
    torch.save({"model_state": state, "epoch": 80, "version": "pcdet+0.6"}, tmp_path / "ckpt.pth")
    tensors = import_openpcdet.convert(import_openpcdet.load_state(tmp_path / "ckpt.pth"))
    assert "vfe.pfn_layers.0.linear.weight" in tensors
    assert not any(k.endswith("num_batches_tracked") or k.startswith("module.") for k in tensors)
    torch.testing.assert_close(tensors["dense_head.conv_box.weight"], net.dense_head.conv_box.weight.detach())


def test_training_pfn_on_real_points_equals_the_padded_pfn():
    """Same pillar features, BatchNorm running statistics and gradients as the padded
    forward, with pillars that are full, nearly empty, and all-negative after the linear."""
    torch.manual_seed(3)
    padded = M.PFNLayer(10, 16, use_norm=True, last_layer=True)
    with torch.no_grad():
        padded.norm.weight.uniform_(0.5, 1.5)
        padded.norm.bias.uniform_(-0.5, 0.5)
    real = copy.deepcopy(padded)
    p, m = 40, 8
    num_points = torch.randint(1, m + 1, (p,))
    num_points[:3] = m
    x = torch.randn(p, m, 10) * 3
    x[torch.arange(m)[None, :] >= num_points[:, None]] = 0.0
    out = [layer.train()(x, n) for layer, n in ((padded, None), (real, num_points))]
    assert torch.allclose(out[0], out[1], atol=1e-5)
    for a, b in ((padded.norm.running_mean, real.norm.running_mean), (padded.norm.running_var, real.norm.running_var)):
        assert torch.allclose(a, b, atol=1e-5)
    assert int(real.norm.num_batches_tracked) == 1
    weights = torch.randn_like(out[0])
    for o in out:
        (o * weights).sum().backward()
    for name in ("linear.weight", "norm.weight", "norm.bias"):
        ga, gb = padded.get_parameter(name).grad, real.get_parameter(name).grad
        assert torch.allclose(ga, gb, atol=1e-4, rtol=1e-4), name

"""Trains a PointPillars model on a KITTI-layout dataset and exports it for lidarq.

    python tools/train/train.py --config tools/train/configs/demo.json \
        --data data/train --val-data data/val --out models/demo --epochs 6

Writes into --out: `model.safetensors` (OpenPCDet tensor names, BatchNorm statistics
included), `model.json` (the config the Rust detector reads), `checkpoint.pt` (model,
optimizer, schedule and epoch, for --resume) and `train_log.json` (losses per epoch, the
validation loss, wall time). Everything is seeded: the same seed, data and device give the
same weights.

The recipe is OpenPCDet's KITTI PointPillars recipe: Adam(W) with a one-cycle schedule
(lr 0.003 peak, 40 % warm-up, div factor 10, momentum 0.95 -> 0.85), weight decay 0.01,
gradient clipping at norm 10, focal + smooth-L1 + direction losses (`targets.py`), ground
truth sampling, flip, rotation and scaling (`kitti_data.py`), the numpy voxelizer that the
Rust crate matches bit for bit (`voxelize.py`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import threading
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import kitti_data as D
import model as M
import targets as T
import voxelize as V

GRAD_CLIP = 10.0
LR, WEIGHT_DECAY, PCT_START, DIV_FACTOR = 0.003, 0.01, 0.4, 10.0
MOMENTUMS = (0.95, 0.85)


def voxel_config(cfg: dict, split: str) -> V.VoxelConfig:
    v = cfg["voxel"]
    return V.VoxelConfig(tuple(v["point_cloud_range"]), tuple(v["voxel_size"]), v["max_points_per_voxel"], v["max_voxels"][split])


def decoration(cfg: dict) -> V.PillarDecoration:
    return V.PillarDecoration(cfg["vfe"]["use_absolute_xyz"], cfg["vfe"]["with_distance"])


def in_range(pts: np.ndarray, r) -> np.ndarray:
    return (pts[:, 0] >= r[0]) & (pts[:, 0] <= r[3]) & (pts[:, 1] >= r[1]) & (pts[:, 1] <= r[4])


class FrameDataset(torch.utils.data.Dataset):
    """Frames of a SplitCache -> voxelized pillars and anchor targets. Training frames are
    augmented with a generator seeded by (seed, epoch, frame), so runs repeat exactly."""

    def __init__(self, cache: D.SplitCache, cfg: dict, train: bool, seed: int, aug: D.AugmentConfig):
        self.cache, self.cfg, self.train, self.seed, self.aug = cache, cfg, train, seed, aug
        self.epoch = 0
        self.vcfg = voxel_config(cfg, "train" if train else "test")
        self.deco = decoration(cfg)
        self.assigner = T.TargetAssigner(cfg)

    def __len__(self) -> int:
        return len(self.cache.ids)

    def __getitem__(self, i: int):
        pts, boxes, labels = self.cache.frame(i)
        r = self.cfg["voxel"]["point_cloud_range"]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            pts, boxes, labels = D.sample_ground_truth(self.cache, pts, boxes, labels, self.aug.sample_groups, rng)
            pts, boxes = D.augment(pts, boxes, self.aug, rng)
            keep = D.mask_boxes_in_range(boxes, r)
            boxes, labels = boxes[keep], labels[keep]
            pts = pts[in_range(pts, r)]
            pts = pts[rng.permutation(len(pts))]
        features, coords, num_points = V.pillarize(pts, self.vcfg, self.deco)
        lab, box_t, dir_t = self.assigner.assign(boxes, labels)
        return features, coords, lab, box_t, dir_t, num_points


def collate(items):
    """-> features, coords (batch, z, y, x), labels, box targets, direction targets, num_points."""
    feats, coords = [], []
    for b, (f, c, *_rest) in enumerate(items):
        feats.append(torch.from_numpy(f))
        coords.append(torch.from_numpy(np.concatenate([np.full((len(c), 1), b, np.int32), c], axis=1)))
    stack = lambda k: torch.from_numpy(np.stack([it[k] for it in items]))  # noqa: E731
    num_points = torch.cat([torch.from_numpy(it[5].astype(np.int64)) for it in items])
    return torch.cat(feats), torch.cat(coords), stack(2), stack(3), stack(4), num_points


def loader(ds, batch_size: int, shuffle: bool, workers: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=shuffle, num_workers=workers, collate_fn=collate,
        generator=g, persistent_workers=False, drop_last=shuffle,
    )


def prefetched(batches, depth: int = 2):
    """Yields `batches`, loading the next ones on a thread while the caller trains on the
    current one. numpy and torch release the GIL, so the loading fills the core that the
    training step leaves idle; a loader process would compete for both cores instead."""
    q: queue.Queue = queue.Queue(depth)
    done = object()

    def fill():
        try:
            for b in batches:
                q.put(b)
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            q.put(e)

    threading.Thread(target=fill, daemon=True).start()
    while (b := q.get()) is not done:
        if isinstance(b, BaseException):
            raise b
        yield b


def load_cache(root: Path, split: str, classes: list[str], workers: int) -> D.SplitCache:
    """The split's cache, prepared (on every core, or `workers` processes if more) and
    saved beside the data the first time."""
    path = root / f".lidarq_train_cache_{split}.npz"
    if path.exists():
        return D.SplitCache.load(path)
    t0 = time.time()
    cache = D.prepare(root, split, classes, workers=max(workers, os.cpu_count() or 1), progress=lambda n, total: n % 500 == 0 and print(f"prepare {split}: {n}/{total}", flush=True))
    print(f"prepared {split}: {len(cache.ids)} frames, {len(cache.db_labels)} database objects in {time.time() - t0:.0f} s")
    cache.save(path)
    return cache


def run_batch(net, batch, device, num_classes):
    feats, coords, lab, box_t, dir_t, num_points = (t.to(device, non_blocking=True) for t in batch)
    preds = net(feats, coords, lab.shape[0], num_points)
    return T.losses(preds, lab, box_t, dir_t, num_classes)


def train_step(net, batch, device, num_classes, opt, sched, sums: dict) -> None:
    """One optimiser step (gradient clipping, schedule); adds each loss term to `sums`."""
    terms = run_batch(net, batch, device, num_classes)
    opt.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
    opt.step()
    sched.step()
    for k, v in terms.items():
        sums[k] = sums.get(k, 0.0) + float(v.detach())


def validate(net, dl, device, num_classes) -> dict:
    net.eval()
    sums, n = {}, 0
    with torch.no_grad():
        for batch in prefetched(dl):
            for k, v in run_batch(net, batch, device, num_classes).items():
                sums[k] = sums.get(k, 0.0) + float(v) * batch[2].shape[0]
            n += batch[2].shape[0]
    net.train()
    return {k: v / n for k, v in sums.items()}


def init_head(net) -> None:
    """OpenPCDet's head init: class prior 0.01 (focal loss starts near its optimum for the
    background) and near-zero box residuals."""
    torch.nn.init.constant_(net.dense_head.conv_cls.bias, -math.log((1 - 0.01) / 0.01))
    torch.nn.init.normal_(net.dense_head.conv_box.weight, mean=0.0, std=0.001)


def export(net, cfg: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    (out / "model.json").write_text(json.dumps(cfg, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="KITTI-layout root; trains on ImageSets/train.txt")
    ap.add_argument("--val-data", type=Path, help="root whose ImageSets/val.txt is validated (default --data)")
    ap.add_argument("--val-frames", type=int, default=200, help="frames of the periodic validation")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (timing runs)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--prepare-only", action="store_true", help="build the data caches and stop")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = M.load_config(args.config)
    classes = cfg["class_names"]
    train_cache = load_cache(args.data, "train", classes, args.workers)
    val_cache = load_cache(args.val_data or args.data, "val", classes, args.workers)
    if args.prepare_only:
        return
    aug = D.AugmentConfig()
    train_ds = FrameDataset(train_cache, cfg, True, args.seed, aug)
    val_ds = torch.utils.data.Subset(FrameDataset(val_cache, cfg, False, args.seed, aug), range(min(args.val_frames, len(val_cache.ids))))

    device = torch.device(args.device)
    net = M.PointPillar(cfg)
    init_head(net)
    net = net.to(device, memory_format=torch.channels_last)
    steps_per_epoch = len(train_ds) // args.batch_size
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=LR / DIV_FACTOR, betas=(MOMENTUMS[0], 0.99), weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=total, pct_start=PCT_START, div_factor=DIV_FACTOR,
        base_momentum=MOMENTUMS[1], max_momentum=MOMENTUMS[0], anneal_strategy="cos",
    )
    log = {"args": {k: str(v) for k, v in vars(args).items()}, "epochs": []}
    start_epoch = 0
    ckpt = args.out / "checkpoint.pt"
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, log = state["epoch"], state["log"]
    num_classes = len(classes)
    val_dl = loader(val_ds, args.batch_size, False, args.workers, args.seed)
    t_start = time.time()
    step = 0
    for epoch in range(start_epoch, args.epochs):
        train_ds.epoch = epoch
        net.train()
        sums, n, t0 = {}, 0, time.time()
        for batch in prefetched(loader(train_ds, args.batch_size, True, args.workers, args.seed + epoch)):
            train_step(net, batch, device, num_classes, opt, sched, sums)
            step += 1
            n += 1
            if n % 20 == 0 or n == 5:
                rate = n * args.batch_size / (time.time() - t0)
                print(f"epoch {epoch + 1}/{args.epochs} step {n}/{steps_per_epoch} loss {sum(sums.values()) / n:.4f} "
                      f"({', '.join(f'{k} {v / n:.4f}' for k, v in sums.items())}) {rate:.1f} frames/s", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        train = {k: v / max(n, 1) for k, v in sums.items()}
        val = validate(net, val_dl, device, num_classes)
        entry = {"epoch": epoch + 1, "train": train, "val": val, "seconds": time.time() - t0, "lr": sched.get_last_lr()[0]}
        log["epochs"].append(entry)
        print(json.dumps(entry), flush=True)
        export(net, cfg, args.out)
        torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "epoch": epoch + 1, "log": log}, ckpt)
        if args.max_steps and step >= args.max_steps:
            break
    log["seconds"] = time.time() - t_start
    log["device"] = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    print(f"done in {log['seconds'] / 60:.1f} min -> {args.out}")


if __name__ == "__main__":
    main()

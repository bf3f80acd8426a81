//! The model config (`model.json` beside the weights): OpenPCDet's PointPillars sections
//! with OpenPCDet's key names in snake case. Unknown keys are errors, so a typo never
//! silently falls back to a default. `tools/train/model.py` reads the same file.

use std::path::Path;

use lidarq_voxelizer::{PillarDecoration, Split, VoxelConfig};
use serde::{Deserialize, Serialize};

use crate::error::{DetectorError, Result, read_text};

/// Everything needed to build, run and post-process one PointPillars model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Class names in head-channel order (`Car`, `Pedestrian`, `Cyclist`).
    pub class_names: Vec<String>,
    /// How points become pillars.
    pub voxel: VoxelSection,
    /// PillarVFE.
    pub vfe: VfeConfig,
    /// PointPillarScatter.
    pub map_to_bev: MapToBevConfig,
    /// BaseBEVBackbone (+ the optional attention block).
    pub backbone_2d: BackboneConfig,
    /// AnchorHeadSingle.
    pub dense_head: DenseHeadConfig,
    /// Score threshold and NMS.
    pub post_processing: PostProcessingConfig,
}

/// Voxelization (OpenPCDet `DATA_CONFIG`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoxelSection {
    /// `[x_min, y_min, z_min, x_max, y_max, z_max]` (m), kept as the YAML's doubles (the
    /// voxelizer uses them at two precisions, like OpenPCDet).
    pub point_cloud_range: [f64; 6],
    /// Pillar size `[x, y, z]` (m); z spans the whole range for pillars.
    pub voxel_size: [f64; 3],
    /// Points kept per pillar.
    pub max_points_per_voxel: usize,
    /// Pillars kept per frame.
    pub max_voxels: MaxVoxels,
    /// Raw point features (x, y, z, intensity = 4).
    pub num_point_features: usize,
}

/// Pillar limits for training and inference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxVoxels {
    /// During training.
    pub train: usize,
    /// During inference.
    pub test: usize,
}

/// PillarVFE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VfeConfig {
    /// Output channels of each PFN layer (all but the last output half, concatenated with
    /// the pillar max).
    pub num_filters: Vec<usize>,
    /// BatchNorm after each linear (then the linear has no bias).
    pub use_norm: bool,
    /// Append the point's distance to the origin.
    pub with_distance: bool,
    /// Keep absolute x, y, z among the features (OpenPCDet's `USE_ABSLOTE_XYZ`).
    pub use_absolute_xyz: bool,
}

/// PointPillarScatter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapToBevConfig {
    /// Channels of the BEV pseudo-image (= the last PFN's filters).
    pub num_bev_features: usize,
}

/// BaseBEVBackbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// 3×3 stride-1 convs after the strided one, per block.
    pub layer_nums: Vec<usize>,
    /// Stride of each block's first conv.
    pub layer_strides: Vec<usize>,
    /// Channels of each block.
    pub num_filters: Vec<usize>,
    /// Stride (= kernel) of each block's transposed conv.
    pub upsample_strides: Vec<usize>,
    /// Output channels of each transposed conv.
    pub num_upsample_filters: Vec<usize>,
    /// Optional windowed self-attention on one block's output.
    #[serde(default)]
    pub attention: Option<AttentionConfig>,
}

/// Windowed multi-head self-attention on a block output (`backbone_2d.attention.*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionConfig {
    /// Index of the block whose output it refines (before that block's deblock).
    pub block: usize,
    /// Attention heads; must divide the block's channels.
    pub num_heads: usize,
    /// Side of the square windows (cells).
    pub window_size: usize,
}

/// AnchorHeadSingle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseHeadConfig {
    /// Whether `conv_dir_cls` exists.
    pub use_direction_classifier: bool,
    /// `DIR_OFFSET` (rad).
    pub dir_offset: f32,
    /// `DIR_LIMIT_OFFSET`.
    pub dir_limit_offset: f32,
    /// `NUM_DIR_BINS`.
    pub num_dir_bins: usize,
    /// One anchor set per class, in class order.
    pub anchor_generator: Vec<AnchorClassConfig>,
}

/// One entry of `ANCHOR_GENERATOR_CONFIG`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorClassConfig {
    /// The class these anchors predict.
    pub class_name: String,
    /// `[dx, dy, dz]` per anchor size (m).
    pub anchor_sizes: Vec<[f32; 3]>,
    /// Anchor yaws (rad).
    pub anchor_rotations: Vec<f32>,
    /// Anchor bottom heights (m).
    pub anchor_bottom_heights: Vec<f32>,
    /// Anchors at cell centers (true) or spanning the range edge to edge (false).
    pub align_center: bool,
    /// Voxel-grid cells per head-map cell.
    pub feature_map_stride: usize,
    /// Target assignment: IoU for a positive (training only).
    pub matched_threshold: f32,
    /// Target assignment: IoU below which an anchor is negative (training only).
    pub unmatched_threshold: f32,
}

/// `POST_PROCESSING` with `NMS_CONFIG` (class-agnostic rotated NMS).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostProcessingConfig {
    /// Minimum sigmoid score kept.
    pub score_thresh: f32,
    /// BEV IoU above which a lower-scored box is suppressed.
    pub nms_thresh: f32,
    /// Boxes entering NMS, best first.
    pub nms_pre_maxsize: usize,
    /// Boxes kept after NMS.
    pub nms_post_maxsize: usize,
}

/// `DIR_OFFSET` as OpenPCDet's yaml writes it: 0.78539, not π/4 — decoded yaws depend on
/// the exact value.
#[allow(clippy::approx_constant)]
pub const OPENPCDET_DIR_OFFSET: f32 = 0.78539;

/// Head-map cells per voxel-grid cell along x and y.
const KITTI_HEAD_STRIDE: usize = 2;

impl ModelConfig {
    /// OpenPCDet's `kitti_models/pointpillar.yaml` (test-time limits).
    pub fn kitti() -> Self {
        let anchor = |name: &str, size: [f32; 3], bottom: f32, matched: f32, unmatched: f32| {
            AnchorClassConfig {
                class_name: name.to_string(),
                anchor_sizes: vec![size],
                anchor_rotations: vec![0.0, 1.57],
                anchor_bottom_heights: vec![bottom],
                align_center: false,
                feature_map_stride: KITTI_HEAD_STRIDE,
                matched_threshold: matched,
                unmatched_threshold: unmatched,
            }
        };
        Self {
            class_names: ["Car", "Pedestrian", "Cyclist"].map(String::from).to_vec(),
            voxel: VoxelSection {
                point_cloud_range: [0.0, -39.68, -3.0, 69.12, 39.68, 1.0],
                voxel_size: [0.16, 0.16, 4.0],
                max_points_per_voxel: 32,
                max_voxels: MaxVoxels {
                    train: 16000,
                    test: 40000,
                },
                num_point_features: 4,
            },
            vfe: VfeConfig {
                num_filters: vec![64],
                use_norm: true,
                with_distance: false,
                use_absolute_xyz: true,
            },
            map_to_bev: MapToBevConfig {
                num_bev_features: 64,
            },
            backbone_2d: BackboneConfig {
                layer_nums: vec![3, 5, 5],
                layer_strides: vec![2, 2, 2],
                num_filters: vec![64, 128, 256],
                upsample_strides: vec![1, 2, 4],
                num_upsample_filters: vec![128, 128, 128],
                attention: None,
            },
            dense_head: DenseHeadConfig {
                use_direction_classifier: true,
                dir_offset: OPENPCDET_DIR_OFFSET,
                dir_limit_offset: 0.0,
                num_dir_bins: 2,
                anchor_generator: vec![
                    anchor("Car", [3.9, 1.6, 1.56], -1.78, 0.6, 0.45),
                    anchor("Pedestrian", [0.8, 0.6, 1.73], -0.6, 0.5, 0.35),
                    anchor("Cyclist", [1.76, 0.6, 1.73], -0.6, 0.5, 0.35),
                ],
            },
            post_processing: PostProcessingConfig {
                score_thresh: 0.1,
                nms_thresh: 0.01,
                nms_pre_maxsize: 4096,
                nms_post_maxsize: 500,
            },
        }
    }

    /// Reads and validates a JSON config.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self =
            serde_json::from_str(&read_text(path)?).map_err(|e| DetectorError::Config {
                path: path.into(),
                msg: e.to_string(),
            })?;
        cfg.validate().map_err(|msg| DetectorError::Config {
            path: path.into(),
            msg,
        })?;
        Ok(cfg)
    }

    /// The voxelizer's config for training or inference.
    pub fn voxel_config(&self, split: Split) -> VoxelConfig {
        let v = &self.voxel;
        VoxelConfig {
            point_cloud_range: v.point_cloud_range,
            voxel_size: v.voxel_size,
            max_points_per_voxel: v.max_points_per_voxel,
            max_voxels: match split {
                Split::Train => v.max_voxels.train,
                Split::Test => v.max_voxels.test,
            },
        }
    }

    /// The point decoration PillarVFE expects.
    pub fn decoration(&self) -> PillarDecoration {
        PillarDecoration {
            use_absolute_xyz: self.vfe.use_absolute_xyz,
            with_distance: self.vfe.with_distance,
        }
    }

    /// Voxel grid `(nx, ny, nz)`, rounded like OpenPCDet.
    pub fn grid_size(&self) -> [usize; 3] {
        let r = &self.voxel.point_cloud_range;
        let v = &self.voxel.voxel_size;
        std::array::from_fn(|i| ((r[i + 3] - r[i]) / v[i]).round().max(0.0) as usize)
    }

    /// Features per point entering the first PFN layer (what the voxelizer decorates).
    pub fn decorated_features(&self) -> usize {
        let xyz = if self.vfe.use_absolute_xyz { 6 } else { 3 };
        self.voxel.num_point_features + xyz + usize::from(self.vfe.with_distance)
    }

    /// Anchors per head-map cell (all classes, sizes, heights and rotations).
    pub fn anchors_per_location(&self) -> usize {
        self.dense_head
            .anchor_generator
            .iter()
            .map(|a| {
                a.anchor_sizes.len() * a.anchor_rotations.len() * a.anchor_bottom_heights.len()
            })
            .sum()
    }

    /// Checks the cross-section invariants serde cannot; the message says which.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let bb = &self.backbone_2d;
        let n = bb.layer_nums.len();
        if n == 0 {
            return Err("backbone_2d.layer_nums is empty".into());
        }
        for (key, len) in [
            ("layer_strides", bb.layer_strides.len()),
            ("num_filters", bb.num_filters.len()),
            ("upsample_strides", bb.upsample_strides.len()),
            ("num_upsample_filters", bb.num_upsample_filters.len()),
        ] {
            if len != n {
                return Err(format!(
                    "backbone_2d.{key} has {len} entries, layer_nums has {n}"
                ));
            }
        }
        if bb
            .layer_strides
            .iter()
            .chain(&bb.upsample_strides)
            .any(|&s| s == 0)
        {
            return Err("backbone_2d strides must be ≥ 1".into());
        }
        let [nx, ny, nz] = self.grid_size();
        if nx == 0 || ny == 0 || nz != 1 {
            return Err(format!(
                "voxel grid is {nx}×{ny}×{nz}; pillars need nx, ny ≥ 1 and nz = 1"
            ));
        }
        let Some(&last) = self.vfe.num_filters.last() else {
            return Err("vfe.num_filters is empty".into());
        };
        if last != self.map_to_bev.num_bev_features {
            return Err(format!(
                "map_to_bev.num_bev_features is {} but the last PFN outputs {last}",
                self.map_to_bev.num_bev_features
            ));
        }
        let sizes = self.block_sizes();
        let head_map = self.backbone_output_size();
        for (i, ((h, w), u)) in sizes.iter().zip(&bb.upsample_strides).enumerate() {
            if (h * u, w * u) != head_map || head_map.0 == 0 || head_map.1 == 0 {
                return Err(format!(
                    "deblock {i} outputs {}×{}, deblock 0 outputs {}×{}; check the strides",
                    h * u,
                    w * u,
                    head_map.0,
                    head_map.1
                ));
            }
        }
        if let Some(att) = &bb.attention {
            let c = bb
                .num_filters
                .get(att.block)
                .ok_or(format!("attention.block {} has no such block", att.block))?;
            if att.num_heads == 0 || c % att.num_heads != 0 || att.window_size == 0 {
                return Err(format!(
                    "attention: {} heads, window {} on {c} channels",
                    att.num_heads, att.window_size
                ));
            }
        }
        if self.dense_head.anchor_generator.len() != self.class_names.len() {
            return Err("dense_head.anchor_generator needs one entry per class".into());
        }
        for a in &self.dense_head.anchor_generator {
            let stride = a.feature_map_stride;
            if stride == 0 || (ny / stride, nx / stride) != head_map {
                return Err(format!(
                    "{}: feature_map_stride {stride} does not give the head map {head_map:?}",
                    a.class_name
                ));
            }
        }
        if self.dense_head.use_direction_classifier && self.dense_head.num_dir_bins == 0 {
            return Err("dense_head.num_dir_bins must be ≥ 1".into());
        }
        Ok(())
    }

    /// `(height, width)` of each block's output: a 3×3 conv with padding 1 and stride s maps
    /// n cells to ceil(n / s).
    pub fn block_sizes(&self) -> Vec<(usize, usize)> {
        let [nx, ny, _] = self.grid_size();
        let mut size = (ny, nx);
        self.backbone_2d
            .layer_strides
            .iter()
            .map(|&s| {
                size = (size.0.div_ceil(s.max(1)), size.1.div_ceil(s.max(1)));
                size
            })
            .collect()
    }

    /// `(height, width)` of the backbone output (the head map), from the first deblock.
    pub fn backbone_output_size(&self) -> (usize, usize) {
        let (h, w) = self.block_sizes().first().copied().unwrap_or((0, 0));
        let u = self
            .backbone_2d
            .upsample_strides
            .first()
            .copied()
            .unwrap_or(0);
        (h * u, w * u)
    }
}

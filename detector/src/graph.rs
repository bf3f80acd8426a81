//! The explicit layer graph: a topologically ordered list of named layers over typed
//! tensors, with BatchNorm already folded. Layer names are OpenPCDet module paths
//! (`vfe.pfn_layers.0`, `backbone_2d.blocks.0.1`, `backbone_2d.deblocks.2.0`,
//! `dense_head.conv_cls`, ...), so a precision plan written against OpenPCDet's names
//! selects layers here, and the fp32 and int8 executors run this same graph.
//!
//! Weights keep PyTorch's layouts, which the `lidarq-quant` kernels pack from: OIHW for a
//! convolution, IOHW for a transposed convolution, `[O, I]` for a linear layer.
//! Activations are channels-last (NHWC, batch 1).

use crate::config::{AttentionConfig, ModelConfig};
use lidarq_quant::{BatchNorm, fold_batch_norm};

use crate::weights::WeightStore;

/// OpenPCDet's BatchNorm epsilon (PFN and backbone alike).
pub const BN_EPS: f32 = 1e-3;
/// LayerNorm epsilon of the attention block (PyTorch's default).
pub const LN_EPS: f32 = 1e-5;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// What a tensor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorShape {
    /// Per pillar: its points (the real ones, plus one row standing for all padded slots
    /// when the pillar is not full), `channels` each.
    Points {
        /// Features per point.
        channels: usize,
    },
    /// One vector per pillar.
    Pillars {
        /// Features per pillar.
        channels: usize,
    },
    /// A dense BEV map, NHWC.
    Map {
        /// Rows (y).
        height: usize,
        /// Columns (x).
        width: usize,
        /// Channels.
        channels: usize,
    },
}

impl TensorShape {
    /// `(height, width, channels)`; height and width are 0 for per-pillar tensors.
    pub fn hwc(&self) -> (usize, usize, usize) {
        match *self {
            TensorShape::Map {
                height,
                width,
                channels,
            } => (height, width, channels),
            TensorShape::Points { channels } | TensorShape::Pillars { channels } => {
                (0, 0, channels)
            }
        }
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDesc {
    /// Name (OpenPCDet's batch_dict key for the stage boundaries, else the producing layer).
    pub name: String,
    /// Kind and size.
    pub shape: TensorShape,
}

/// Dense weights of a conv, transposed conv or linear, BatchNorm folded.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Output channels.
    pub out_channels: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Square kernel side (1 for a linear layer).
    pub kernel: usize,
    /// A transposed convolution: `data` is IOHW instead of OIHW.
    pub transposed: bool,
    /// PyTorch layout (see the module docs).
    pub data: Vec<f32>,
    /// `[O]`.
    pub bias: Vec<f32>,
}

/// A 2D convolution (`Conv2d` with `ZeroPad2d`/`padding`) or a transposed convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Folded weights.
    pub weights: Weights,
    /// Stride (both axes).
    pub stride: usize,
    /// Zero padding on every side (0 for transposed convs, whose kernel equals the stride).
    pub pad: usize,
    /// ReLU after the bias.
    pub relu: bool,
}

/// The windowed self-attention block (see `tools/train/model.py` for the exact maths).
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// Heads and window size.
    pub config: AttentionConfig,
    /// LayerNorm scale `[C]`.
    pub norm_weight: Vec<f32>,
    /// LayerNorm shift `[C]`.
    pub norm_bias: Vec<f32>,
    /// q | k | v projection, `[3C, C]`.
    pub qkv: Weights,
    /// Output projection, `[C, C]`.
    pub proj: Weights,
}

/// What a layer computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// PFN layer: linear (BN folded) + ReLU per point, max over the pillar; the last one
    /// outputs [`TensorShape::Pillars`], the others each point concatenated with the max.
    Pfn {
        /// `[O, I]`.
        linear: Weights,
        /// Whether this is the last PFN layer.
        last: bool,
    },
    /// Pillar vectors scattered into a zeroed BEV map at their (y, x) cells.
    Scatter,
    /// Convolution with fused bias and optional ReLU.
    Conv(Conv),
    /// Transposed convolution, kernel = stride, with fused bias and ReLU.
    Deconv(Conv),
    /// Channel concatenation of the inputs, in order.
    Concat,
    /// `x + proj(attention(LayerNorm(x)))`.
    Attention(Attention),
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// OpenPCDet module path.
    pub name: String,
    /// The computation.
    pub op: Op,
    /// Input tensors.
    pub inputs: Vec<TensorId>,
    /// Output tensor.
    pub output: TensorId,
}

/// Tensor ids of the head outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadTensors {
    /// Class logits `[H, W, A·K]`.
    pub cls: TensorId,
    /// Box residuals `[H, W, A·7]`.
    pub boxes: TensorId,
    /// Direction logits `[H, W, A·bins]`, when the head has a direction classifier.
    pub dir: Option<TensorId>,
}

/// The whole network, ready to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Every tensor; layers refer to them by index.
    pub tensors: Vec<TensorDesc>,
    /// Layers in execution order.
    pub layers: Vec<Layer>,
    /// The decorated pillar points (`voxels`).
    pub input: TensorId,
    /// The head maps.
    pub head: HeadTensors,
}

/// Box residuals per anchor (x, y, z, dx, dy, dz, yaw).
pub const BOX_CODE_SIZE: usize = 7;

/// The PyTorch module a weight tensor comes from (it decides the tensor's layout).
#[derive(Clone, Copy)]
enum Kind {
    Linear,
    Conv(usize),
    Deconv(usize),
}

struct Builder<'a> {
    store: &'a mut WeightStore,
    tensors: Vec<TensorDesc>,
    layers: Vec<Layer>,
}

impl Builder<'_> {
    fn tensor(&mut self, name: &str, shape: TensorShape) -> TensorId {
        self.tensors.push(TensorDesc {
            name: name.to_string(),
            shape,
        });
        self.tensors.len() - 1
    }

    fn layer(&mut self, name: &str, op: Op, inputs: Vec<TensorId>, shape: TensorShape) -> TensorId {
        self.layer_into(name, name, op, inputs, shape)
    }

    fn layer_into(
        &mut self,
        name: &str,
        output: &str,
        op: Op,
        inputs: Vec<TensorId>,
        shape: TensorShape,
    ) -> TensorId {
        let output = self.tensor(output, shape);
        self.layers.push(Layer {
            name: name.to_string(),
            op,
            inputs,
            output,
        });
        output
    }

    fn map(&self, id: TensorId) -> (usize, usize, usize) {
        self.tensors[id].shape.hwc()
    }

    /// Reads PyTorch weights (`Linear [O, I]`, `Conv2d [O, I, k, k]`, `ConvTranspose2d
    /// [I, O, k, k]`), with the BatchNorm under `bn` folded in when given.
    fn weights(
        &mut self,
        name: &str,
        kind: Kind,
        o: usize,
        i: usize,
        bias: bool,
        bn: Option<&str>,
    ) -> Weights {
        let (kernel, transposed, shape) = match kind {
            Kind::Linear => (1, false, vec![o, i]),
            Kind::Conv(k) => (k, false, vec![o, i, k, k]),
            Kind::Deconv(k) => (k, true, vec![i, o, k, k]),
        };
        let data = self.store.get(&format!("{name}.weight"), &shape);
        let mut data = data;
        let mut bias = if bias {
            self.store.get(&format!("{name}.bias"), &[o])
        } else {
            vec![0.0; o]
        };
        if let Some(prefix) = bn {
            let [gamma, beta, mean, var] = self.store.batch_norm(prefix, o);
            let bn = BatchNorm {
                gamma: &gamma,
                beta: &beta,
                mean: &mean,
                var: &var,
                eps: BN_EPS,
            };
            match fold_batch_norm(&mut data, &shape, usize::from(transposed), Some(&bias), &bn) {
                Ok(folded) => bias = folded,
                Err(e) => self.store.report(prefix, &format!("cannot fold: {e}")),
            }
        }
        Weights {
            out_channels: o,
            in_channels: i,
            kernel,
            transposed,
            data,
            bias,
        }
    }
}

impl Graph {
    /// Builds the graph of `cfg` with weights from `store` (BatchNorm folded). Call
    /// [`WeightStore::finish`] afterwards to learn about every weight problem at once.
    pub fn build(cfg: &ModelConfig, store: &mut WeightStore) -> Self {
        let mut b = Builder {
            store,
            tensors: Vec::new(),
            layers: Vec::new(),
        };
        let mut channels = cfg.decorated_features();
        let input = b.tensor("voxels", TensorShape::Points { channels });
        let mut x = input;

        let n_pfn = cfg.vfe.num_filters.len();
        for (idx, &filters) in cfg.vfe.num_filters.iter().enumerate() {
            let last = idx + 1 == n_pfn;
            let out = if last { filters } else { filters / 2 };
            let name = format!("vfe.pfn_layers.{idx}");
            let norm = format!("{name}.norm");
            let bn = cfg.vfe.use_norm.then_some(norm.as_str());
            let linear = b.weights(
                &format!("{name}.linear"),
                Kind::Linear,
                out,
                channels,
                !cfg.vfe.use_norm,
                bn,
            );
            let (tname, shape) = if last {
                (
                    "pillar_features".to_string(),
                    TensorShape::Pillars { channels: out },
                )
            } else {
                (name.clone(), TensorShape::Points { channels: 2 * out })
            };
            x = b.layer_into(&name, &tname, Op::Pfn { linear, last }, vec![x], shape);
            channels = if last { out } else { 2 * out };
        }

        let [nx, ny, _] = cfg.grid_size();
        let c_bev = cfg.map_to_bev.num_bev_features;
        x = b.layer_into(
            "map_to_bev_module",
            "spatial_features",
            Op::Scatter,
            vec![x],
            TensorShape::Map {
                height: ny,
                width: nx,
                channels: c_bev,
            },
        );

        let bb = &cfg.backbone_2d;
        let mut ups = Vec::new();
        for (blk, &n_convs) in bb.layer_nums.iter().enumerate() {
            let (h, w, c_in) = b.map(x);
            let (s, c) = (bb.layer_strides[blk], bb.num_filters[blk]);
            let (mut h, mut w) = (h.div_ceil(s), w.div_ceil(s));
            let mut cin = c_in;
            for j in 0..=n_convs {
                let name = format!("backbone_2d.blocks.{blk}.{}", 1 + 3 * j);
                let bn = format!("backbone_2d.blocks.{blk}.{}", 2 + 3 * j);
                let weights = b.weights(&name, Kind::Conv(3), c, cin, false, Some(&bn));
                let stride = if j == 0 { s } else { 1 };
                x = b.layer(
                    &name,
                    Op::Conv(Conv {
                        weights,
                        stride,
                        pad: 1,
                        relu: true,
                    }),
                    vec![x],
                    TensorShape::Map {
                        height: h,
                        width: w,
                        channels: c,
                    },
                );
                cin = c;
            }
            if let Some(att) = bb.attention.filter(|a| a.block == blk) {
                let name = "backbone_2d.attention";
                let norm_weight = b.store.get(&format!("{name}.norm.weight"), &[c]);
                let norm_bias = b.store.get(&format!("{name}.norm.bias"), &[c]);
                let qkv = b.weights(&format!("{name}.qkv"), Kind::Linear, 3 * c, c, true, None);
                let proj = b.weights(&format!("{name}.proj"), Kind::Linear, c, c, true, None);
                let op = Op::Attention(Attention {
                    config: att,
                    norm_weight,
                    norm_bias,
                    qkv,
                    proj,
                });
                x = b.layer(
                    name,
                    op,
                    vec![x],
                    TensorShape::Map {
                        height: h,
                        width: w,
                        channels: c,
                    },
                );
            }
            let (u, cu) = (bb.upsample_strides[blk], bb.num_upsample_filters[blk]);
            let name = format!("backbone_2d.deblocks.{blk}.0");
            let bn = format!("backbone_2d.deblocks.{blk}.1");
            let weights = b.weights(&name, Kind::Deconv(u), cu, c, false, Some(&bn));
            (h, w) = (h * u, w * u);
            let up = b.layer(
                &name,
                Op::Deconv(Conv {
                    weights,
                    stride: u,
                    pad: 0,
                    relu: true,
                }),
                vec![x],
                TensorShape::Map {
                    height: h,
                    width: w,
                    channels: cu,
                },
            );
            ups.push(up);
        }
        let (h, w, _) = b.map(ups[0]);
        let c_cat: usize = bb.num_upsample_filters.iter().sum();
        let features = if ups.len() == 1 {
            ups[0]
        } else {
            b.layer_into(
                "backbone_2d.concat",
                "spatial_features_2d",
                Op::Concat,
                ups,
                TensorShape::Map {
                    height: h,
                    width: w,
                    channels: c_cat,
                },
            )
        };

        let a = cfg.anchors_per_location();
        let dh = &cfg.dense_head;
        let head_conv = |b: &mut Builder, name: &str, out: usize| {
            let weights = b.weights(
                &format!("dense_head.{name}"),
                Kind::Conv(1),
                out,
                c_cat,
                true,
                None,
            );
            let tname = name
                .strip_prefix("conv_")
                .map_or(name.to_string(), |s| format!("{s}_preds"));
            b.layer_into(
                &format!("dense_head.{name}"),
                &tname,
                Op::Conv(Conv {
                    weights,
                    stride: 1,
                    pad: 0,
                    relu: false,
                }),
                vec![features],
                TensorShape::Map {
                    height: h,
                    width: w,
                    channels: out,
                },
            )
        };
        let cls = head_conv(&mut b, "conv_cls", a * cfg.class_names.len());
        let boxes = head_conv(&mut b, "conv_box", a * BOX_CODE_SIZE);
        let dir = dh
            .use_direction_classifier
            .then(|| head_conv(&mut b, "conv_dir_cls", a * dh.num_dir_bins));
        Graph {
            tensors: b.tensors,
            layers: b.layers,
            input,
            head: HeadTensors { cls, boxes, dir },
        }
    }

    /// Multiply-accumulates ×2 of the dense part (convs, deconvs, attention projections),
    /// per frame.
    pub fn dense_flops(&self) -> f64 {
        let map_cells = |id: TensorId| match self.tensors[id].shape {
            TensorShape::Map { height, width, .. } => (height * width) as f64,
            _ => 0.0,
        };
        self.layers
            .iter()
            .map(|l| match &l.op {
                Op::Conv(c) => {
                    map_cells(l.output)
                        * 2.0
                        * (c.weights.kernel
                            * c.weights.kernel
                            * c.weights.in_channels
                            * c.weights.out_channels) as f64
                }
                Op::Deconv(c) => {
                    map_cells(l.inputs[0])
                        * 2.0
                        * (c.weights.kernel
                            * c.weights.kernel
                            * c.weights.in_channels
                            * c.weights.out_channels) as f64
                }
                Op::Attention(a) => {
                    let c = a.proj.in_channels as f64;
                    let ws = (a.config.window_size * a.config.window_size) as f64;
                    map_cells(l.output) * 2.0 * (4.0 * c * c + 2.0 * ws * c)
                }
                Op::Pfn { .. } | Op::Scatter | Op::Concat => 0.0,
            })
            .sum()
    }
}

//! Evaluation: exact rotated IoU (BEV and 3D), KITTI-style AP (R11/R40, 3D/BEV, per class
//! and difficulty) and side-by-side reports comparing precisions of one model.

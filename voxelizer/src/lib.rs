//! Turns point clouds into the backbone's input: PointPillars pillars (decorated point
//! features, pillar coordinates, point counts) and sparse voxels for SECOND-style backbones.
//! It must reproduce the training code's preprocessing exactly, or a model trained in
//! PyTorch silently loses accuracy here.

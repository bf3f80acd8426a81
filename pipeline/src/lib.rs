//! The staged streaming pipeline (source, voxelize, backbone, decode, sinks), drive-log
//! replay and output sinks.

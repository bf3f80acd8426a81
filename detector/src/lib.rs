//! The PointPillars detector: network layers and graph, weight loading (safetensors with
//! OpenPCDet tensor names), fp32/fp16/int8 execution, anchors, box coding and rotated NMS.

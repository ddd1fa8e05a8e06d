"""Datasets for training (``gendef.data.datasets``) and dataset preparation
(``python -m gendef.data.prepare``)."""
from .datasets import (
    ClipDataset,
    DatasetError,
    FrameDataset,
    VideoSource,
    resize_center_crop,
    sample_sparse_times,
    scan_videos,
)

__all__ = [
    "ClipDataset",
    "DatasetError",
    "FrameDataset",
    "VideoSource",
    "resize_center_crop",
    "sample_sparse_times",
    "scan_videos",
]

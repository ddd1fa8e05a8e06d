"""Datasets for training (``gendef.data.datasets``) and dataset preparation
(``python -m gendef.data.prepare``). Imported lazily so that ``gendef.data.synthetic``
and other light users do not pay for torch."""

__all__ = [
    "ClipDataset",
    "FrameDataset",
    "VideoSource",
    "resize_center_crop",
    "sample_sparse_times",
    "scan_videos",
]


def __getattr__(name):
    if name in __all__:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'gendef.data' has no attribute {name!r}")

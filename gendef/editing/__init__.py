"""Editing back-ends for the canonical image: offline looks, ControlNet stylisation, segmentation.

Every editor works on the canonical image only; the CanonicalVideo's grid then
carries the edit through all frames. Heavy libraries (torch, diffusers,
segment-anything) are imported inside the functions that need them.
"""
from .looks import LOOKS, apply_look
from .slot import Slot
from .segment import DEFAULT_SAM, Segmenter, get_segmenter, grabcut_segment, sam_status
from .stylize import CONTROL_TYPES, DEFAULT_BASE, DEFAULT_CONTROLNETS, DEFAULT_LCM_LORA, Stylizer, get_stylizer, load_annotator, make_control_image, weights_status

__all__ = [
    "LOOKS",
    "apply_look",
    "CONTROL_TYPES",
    "DEFAULT_BASE",
    "DEFAULT_CONTROLNETS",
    "DEFAULT_LCM_LORA",
    "Stylizer",
    "get_stylizer",
    "make_control_image",
    "load_annotator",
    "weights_status",
    "DEFAULT_SAM",
    "Segmenter",
    "get_segmenter",
    "grabcut_segment",
    "sam_status",
    "Slot",
]

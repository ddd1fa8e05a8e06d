"""Click-to-segment the canonical image (paper Fig. 7b): SAM, with a GrabCut fallback.

One mask on the canonical image becomes per-frame masks through the grid
(``CanonicalVideo.propagate_mask``), so segmentation runs once, not per frame.
SAM weights are read from a local file or the Hugging Face cache/Hub on first
use; :func:`sam_status` checks for them without touching the network.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import SegmentUnavailable, UsageError
from ..extras import missing_message
from ..imageutil import rgb_uint8
from .slot import Slot

__all__ = [
    "DEFAULT_SAM",
    "DEFAULT_SAM_REPO",
    "SAM_FILES",
    "Segmenter",
    "grabcut_segment",
    "sam_status",
    "resolve_checkpoint",
    "get_segmenter",
]

DEFAULT_SAM = "vit_b"
DEFAULT_SAM_REPO = "ybelkada/segment-anything"
SAM_FILES = {
    "vit_b": "checkpoints/sam_vit_b_01ec64.pth",
    "vit_l": "checkpoints/sam_vit_l_0b3195.pth",
    "vit_h": "checkpoints/sam_vit_h_4b8939.pth",
}


# --------------------------------------------------------------------------------------
# checkpoint location
# --------------------------------------------------------------------------------------
def _check_type(model_type: str) -> str:
    t = str(model_type).strip().lower()
    if t not in SAM_FILES:
        raise UsageError(f"unknown SAM model type {model_type!r}; choose one of: {', '.join(SAM_FILES)}")
    return t


def resolve_checkpoint(checkpoint: Optional[str] = None, model_type: str = DEFAULT_SAM) -> Tuple[str, Optional[str]]:
    """-> (local path, None) or (hub repo id, filename in it).

    ``checkpoint`` (or env GENDEF_SAM_CHECKPOINT) is a local file, a hub repo id
    (the model type's default file is used) or ``owner/repo/path/in/repo.pth``.
    """
    t = _check_type(model_type)
    ck = checkpoint or os.environ.get("GENDEF_SAM_CHECKPOINT") or DEFAULT_SAM_REPO
    ck = str(ck)
    p = Path(ck).expanduser()
    looks_local = ck.startswith((".", "/", "~")) or (p.suffix in (".pth", ".pt", ".safetensors") and p.parent.is_dir())
    if p.is_file() or looks_local:
        return str(p), None
    parts = ck.strip("/").split("/")
    if len(parts) == 2:
        return ck, SAM_FILES[t]
    if len(parts) > 2:
        return "/".join(parts[:2]), "/".join(parts[2:])
    raise UsageError(f"SAM checkpoint {ck!r} is neither a file nor a hub id like {DEFAULT_SAM_REPO}")


def sam_status(checkpoint: Optional[str] = None, model_type: str = DEFAULT_SAM, cache_dir=None) -> tuple:
    """(available, message) for SAM; reads only the disk, never downloads."""
    from huggingface_hub import try_to_load_from_cache

    missing = missing_message("edit", ("segment_anything",), "SAM click segmentation")
    if missing:
        return False, f"{missing}. GrabCut (offline) is used instead."

    try:
        t = _check_type(model_type)
        repo, filename = resolve_checkpoint(checkpoint, t)
    except ValueError as e:
        return False, f"{e}. Click segmentation falls back to GrabCut."
    if filename is None:
        if Path(repo).is_file():
            return True, f"Ready: SAM {t} from {repo}."
        return False, f"SAM checkpoint file {repo} does not exist. Click segmentation falls back to GrabCut."
    try:
        hit = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
    except Exception:
        hit = None
    if isinstance(hit, str) and os.path.isfile(hit):
        return True, f"Ready: SAM {t} ({repo}/{filename}, cached)."
    from .stylize import _offline

    how = f"`hf download {repo} {filename}` while online, or set GENDEF_SAM_CHECKPOINT to a local .pth file"
    if _offline():
        return False, f"SAM {t} weights are not cached and the Hub is offline: {how}. GrabCut (offline) is used instead."
    return False, f"SAM {t} weights are not cached yet ({how}); they download on first use (~375 MB for vit_b)."


def _load_state_dict(path: str) -> dict:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    import torch

    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    return sd


# --------------------------------------------------------------------------------------
# SAM
# --------------------------------------------------------------------------------------
def _points(points, name: str, h: int, w: int) -> np.ndarray:
    if points is None:
        return np.zeros((0, 2), np.float32)
    try:
        p = np.asarray(points, dtype=np.float32).reshape(-1, 2) if len(points) else np.zeros((0, 2), np.float32)
    except (TypeError, ValueError):
        raise UsageError(f"{name} points must be (x, y) pairs") from None
    if not np.all(np.isfinite(p)):
        raise UsageError(f"{name} points contain NaN or inf")
    if len(p) and ((p[:, 0] < 0) | (p[:, 0] > w - 1) | (p[:, 1] < 0) | (p[:, 1] > h - 1)).any():
        raise UsageError(f"{name} points must lie inside the {w}x{h} image")
    return p


def _prompts(positive, negative, box, h: int, w: int) -> tuple:
    """Clicks and box checked against the image size (SAM and GrabCut take the same prompts)."""
    pos = _points(positive, "positive", h, w)
    neg = _points(negative, "negative", h, w)
    b = _box(box, h, w)
    if not len(pos) and b is None:
        raise UsageError("click at least one positive point (or draw a box) on the object")
    return pos, neg, b


def _box(box, h: int, w: int) -> Optional[np.ndarray]:
    if box is None:
        return None
    try:
        b = np.asarray(box, dtype=np.float32).reshape(4)
    except (TypeError, ValueError):
        raise UsageError("box must be (x0, y0, x1, y1)") from None
    x0, y0, x1, y1 = b
    if not (np.all(np.isfinite(b)) and x1 > x0 and y1 > y0):
        raise UsageError(f"box must be (x0, y0, x1, y1) with x0 < x1 and y0 < y1, got {tuple(b)}")
    return np.array([max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)], np.float32)


class Segmenter:
    """SAM behind ``SamPredictor``; the image embedding is cached for repeated clicks."""

    def __init__(self, sam_model, device: Optional[str] = None):
        from segment_anything import SamPredictor

        if device is not None:
            sam_model = sam_model.to(device)
        sam_model.eval()
        self.model = sam_model
        self.predictor = SamPredictor(sam_model)
        self._image_key = None
        self._lock = threading.Lock()
        self.embeddings_computed = 0

    @classmethod
    def from_pretrained(cls, checkpoint: Optional[str] = None, model_type: str = DEFAULT_SAM,
                        device: Optional[str] = None, local_files_only: bool = False, cache_dir=None) -> "Segmenter":
        """Build ``sam_model_registry[model_type]`` and load its weights (weights only, no pickles)."""
        import torch
        from segment_anything import sam_model_registry

        from .stylize import _offline, _short

        t = _check_type(model_type)
        repo, filename = resolve_checkpoint(checkpoint, t)
        if filename is None:
            if not Path(repo).is_file():
                raise SegmentUnavailable(sam_status(checkpoint, t)[1])
            path = repo
        else:
            offline = local_files_only or _offline()
            if offline:
                ok, msg = sam_status(checkpoint, t, cache_dir)
                if not ok:
                    raise SegmentUnavailable(msg)
            try:
                from huggingface_hub import hf_hub_download

                path = hf_hub_download(repo, filename, local_files_only=offline, cache_dir=cache_dir)
            except Exception as e:
                raise SegmentUnavailable(f"could not fetch SAM weights {repo}/{filename} ({_short(e)}); "
                                         "GrabCut (offline) is used instead.") from None
        try:
            state = _load_state_dict(path)
        except Exception as e:
            raise SegmentUnavailable(f"{path} is not a readable weights-only checkpoint ({_short(e)})") from None
        sam = sam_model_registry[t]()
        try:
            sam.load_state_dict(state)
        except Exception as e:
            raise SegmentUnavailable(f"{path} is not a SAM {t} checkpoint ({_short(e)})") from None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(sam, device=device)

    def set_image(self, image) -> np.ndarray:
        """Compute (or reuse) the embedding of ``image``; returns it as uint8 RGB."""
        img = rgb_uint8(image, min_side=2)
        key = (img.shape, hashlib.sha1(img.tobytes()).hexdigest())
        if key != self._image_key:
            self.predictor.set_image(img, image_format="RGB")
            self._image_key = key
            self.embeddings_computed += 1
        return img

    def segment(self, image, positive: Sequence = (), negative: Sequence = (), box=None,
                multimask: Optional[bool] = None) -> np.ndarray:
        """Bool mask [H, W] of the object under the positive clicks (and/or inside the box)."""
        import torch

        with self._lock, torch.inference_mode():
            img = self.set_image(image)
            h, w = img.shape[:2]
            pos, neg, b = _prompts(positive, negative, box, h, w)
            coords = np.concatenate([pos, neg], 0) if len(pos) + len(neg) else None
            labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]).astype(np.int32) if coords is not None else None
            # one click is ambiguous (part / object / whole): ask for three masks and keep the best
            if multimask is None:
                multimask = b is None and len(pos) + len(neg) == 1
            masks, scores, _ = self.predictor.predict(
                point_coords=coords, point_labels=labels, box=b, multimask_output=bool(multimask)
            )
        return np.asarray(masks[int(np.argmax(scores))], dtype=bool)


# --------------------------------------------------------------------------------------
# GrabCut fallback
# --------------------------------------------------------------------------------------
def grabcut_segment(image, positive: Sequence = (), negative: Sequence = (), box=None,
                    iterations: int = 5) -> np.ndarray:
    """Offline click segmentation: OpenCV GrabCut seeded by the clicks (and box).

    Clicks become hard seeds; a disc around each positive click, and the
    connected pixels whose colour is nearer the clicked colours than the
    background's (negative clicks and the image border), start as probable
    foreground; everything else as probable background (outside the box:
    certain background). Only regions touching a positive click are kept.
    """
    img = rgb_uint8(image, min_side=2)
    h, w = img.shape[:2]
    pos, neg, b = _prompts(positive, negative, box, h, w)
    iterations = int(iterations)
    if not 1 <= iterations <= 50:
        raise UsageError(f"iterations must be between 1 and 50, got {iterations}")
    # GrabCut's colour models need pixels: run small images at >= 96 px
    scale = max(1.0, 96.0 / min(h, w))
    if scale > 1.0:
        work = cv2.resize(img, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_CUBIC)
    else:
        work = img
    wh, ww = work.shape[:2]
    pos_s, neg_s = (pos + 0.5) * scale - 0.5, (neg + 0.5) * scale - 0.5  # pixel centres stay centres
    mask = np.full((wh, ww), cv2.GC_PR_BGD, np.uint8)
    seed_r = max(1, int(round(min(wh, ww) / 64)))
    if b is not None:
        x0, y0, x1, y1 = np.clip(((b + 0.5) * scale - 0.5).round(), 0, max(wh, ww)).astype(int)
        mask[:] = cv2.GC_BGD
        mask[y0 : y1 + 1, x0 : x1 + 1] = cv2.GC_PR_FGD if not len(pos) else cv2.GC_PR_BGD
    inside = np.ones((wh, ww), bool) if b is None else mask != cv2.GC_BGD
    near_r = max(seed_r + 1, int(round(min(wh, ww) / 10)))
    for x, y in pos_s:
        disc = np.zeros_like(mask)
        cv2.circle(disc, (int(round(x)), int(round(y))), near_r, 1, -1)
        mask[(disc > 0) & inside & (mask != cv2.GC_FGD)] = cv2.GC_PR_FGD
    if len(pos_s):
        prior = _colour_prior(work, pos_s, neg_s, seed_r) & inside
        mask[prior & (mask == cv2.GC_PR_BGD)] = cv2.GC_PR_FGD
    for x, y in pos_s:
        cv2.circle(mask, (int(round(x)), int(round(y))), seed_r, int(cv2.GC_FGD), -1)
    for x, y in neg_s:
        cv2.circle(mask, (int(round(x)), int(round(y))), seed_r, int(cv2.GC_BGD), -1)
    if not ((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)).any():
        mask[0, :] = cv2.GC_BGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(work, cv2.COLOR_RGB2BGR)
    cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if len(pos_s):
        n, labels = cv2.connectedComponents(fg, connectivity=8)
        keep = set()
        for x, y in pos_s:
            xi, yi = min(int(round(x)), ww - 1), min(int(round(y)), wh - 1)
            if labels[yi, xi] > 0:
                keep.add(int(labels[yi, xi]))
        fg = np.isin(labels, sorted(keep)).astype(np.uint8)
    if scale > 1.0:
        return cv2.resize(fg.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    return fg.astype(bool)


def _colour_prior(img: np.ndarray, pos: np.ndarray, neg: np.ndarray, r: int) -> np.ndarray:
    """Pixels whose Lab colour is nearer the clicked object than the background, connected to a click.

    GrabCut's colour models start from this region; starting from a small disc
    alone lets the background model swallow a large uniform object.
    """
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    h, w = lab.shape[:2]

    def samples(points):
        out = []
        for x, y in points:
            xi, yi = int(round(x)), int(round(y))
            out.append(lab[max(yi - r, 0) : yi + r + 1, max(xi - r, 0) : xi + r + 1].reshape(-1, 3))
        return np.concatenate(out, 0) if out else np.zeros((0, 3), np.float32)

    fg = samples(pos)
    ring = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]], 0)
    bg = np.concatenate([samples(neg), ring], 0)
    step = max(1, len(bg) // 256)
    bg = bg[::step]
    fg = fg[:: max(1, len(fg) // 256)]
    from scipy.spatial import cKDTree

    flat = lab.reshape(-1, 3)
    d_fg = cKDTree(fg).query(flat, k=1)[0]
    d_bg = cKDTree(bg).query(flat, k=1)[0]
    near = (d_fg < d_bg).reshape(h, w).astype(np.uint8)
    _, labels = cv2.connectedComponents(near, connectivity=8)
    keep = {int(labels[min(int(round(y)), h - 1), min(int(round(x)), w - 1)]) for x, y in pos}
    keep.discard(0)
    return np.isin(labels, sorted(keep))


def get_segmenter(checkpoint: Optional[str] = None, model_type: str = DEFAULT_SAM, device: Optional[str] = None,
                  local_files_only: bool = False, cache: Optional[Slot] = None) -> Segmenter:
    """A SAM segmenter (sessions may share it, its calls are serialised), loaded once into ``cache``,
    a :class:`gendef.editing.slot.Slot` the caller owns (the studio's services, a script); without
    one, a new Segmenter is loaded and nothing is kept."""
    key = (resolve_checkpoint(checkpoint, model_type), _check_type(model_type), device)

    def build():
        return Segmenter.from_pretrained(checkpoint, model_type, device, local_files_only)

    return build() if cache is None else cache.get(key, build)

"""ControlNet stylisation of the canonical image (paper Fig. 5b/5c).

Stylising one canonical image and propagating it through the grid gives a
temporally consistent stylised video for the price of a single diffusion call.
Weights come from the Hugging Face cache / Hub (or local folders) on first use,
never at import; :func:`weights_status` tells the UI, without touching the
network, whether they are present and how to get them.
"""
from __future__ import annotations

import inspect
import math
import os
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import StylizeUnavailable, UsageError
from ..extras import missing_message
from ..imageutil import rgb_uint8
from .slot import Slot

__all__ = [
    "CONTROL_TYPES",
    "DEFAULT_BASE",
    "DEFAULT_CONTROLNETS",
    "DEFAULT_LCM_LORA",
    "ANNOTATOR_REPO",
    "Stylizer",
    "make_control_image",
    "load_annotator",
    "weights_status",
    "resolve_ids",
    "get_stylizer",
]

CONTROL_TYPES = ["canny", "lineart", "hed", "scribble", "depth"]
DEFAULT_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CONTROLNETS = {
    "canny": "lllyasviel/control_v11p_sd15_canny",
    "lineart": "lllyasviel/control_v11p_sd15_lineart",
    "hed": "lllyasviel/control_v11p_sd15_softedge",
    "scribble": "lllyasviel/control_v11p_sd15_scribble",
    "depth": "lllyasviel/control_v11f1p_sd15_depth",
}
DEFAULT_LCM_LORA = "latent-consistency/lcm-lora-sdv1-5"
ANNOTATOR_REPO = "lllyasviel/Annotators"
# annotator weights per control type (canny is plain OpenCV and needs none)
_ANNOTATOR_FILES = {
    "lineart": ("sk_model.pth", "sk_model2.pth"),
    "hed": ("ControlNetHED.pth",),
    "scribble": ("ControlNetHED.pth",),
    "depth": ("dpt_hybrid-midas-501f0c75.pt",),
}
# any one file of each group must be present for a diffusers folder/repo to load
_BASE_FILES = (
    ("model_index.json",),
    ("scheduler/scheduler_config.json",),
    ("tokenizer/vocab.json", "tokenizer/tokenizer.json"),
    ("tokenizer/merges.txt", "tokenizer/tokenizer.json"),
    ("text_encoder/config.json",),
    ("text_encoder/model.safetensors", "text_encoder/pytorch_model.bin", "text_encoder/model.fp16.safetensors"),
    ("unet/config.json",),
    (
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.fp16.safetensors",
    ),
    ("vae/config.json",),
    (
        "vae/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ),
)
_CONTROLNET_FILES = (
    ("config.json",),
    ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.safetensors"),
)
_LORA_FILES = (("pytorch_lora_weights.safetensors",),)
_LIBRARIES = ("diffusers", "transformers", "controlnet_aux")  # what stylize imports (the studio's extra)


# --------------------------------------------------------------------------------------
# model ids and the offline check
# --------------------------------------------------------------------------------------
def _check_control(control: str) -> str:
    c = str(control).lower().strip()
    if c not in CONTROL_TYPES:
        raise UsageError(f"unknown control type {control!r}; choose one of: {', '.join(CONTROL_TYPES)}")
    return c


def resolve_ids(control: str = "canny", base: Optional[str] = None, controlnet: Optional[str] = None,
                lcm_lora: Optional[str] = None) -> dict:
    """Model ids after applying the env overrides (GENDEF_SD_MODEL, GENDEF_CONTROLNET_<TYPE>, GENDEF_LCM_LORA)."""
    c = _check_control(control)
    return {
        "base": base or os.environ.get("GENDEF_SD_MODEL") or DEFAULT_BASE,
        "controlnet": controlnet or os.environ.get(f"GENDEF_CONTROLNET_{c.upper()}") or DEFAULT_CONTROLNETS[c],
        "lcm_lora": lcm_lora or os.environ.get("GENDEF_LCM_LORA") or DEFAULT_LCM_LORA,
        "annotator": os.environ.get("GENDEF_ANNOTATORS") or ANNOTATOR_REPO,
    }


def _missing_files(repo_or_path: str, groups: Sequence[Sequence[str]], cache_dir=None) -> list:
    """Files (one per group) found neither in a local folder nor in the HF cache. No network."""
    from huggingface_hub import try_to_load_from_cache

    local = Path(repo_or_path).expanduser()
    missing = []
    for group in groups:
        found = False
        for name in group:
            if local.is_dir():
                found = (local / name).is_file()
            else:
                try:
                    hit = try_to_load_from_cache(repo_or_path, name, cache_dir=cache_dir)
                except Exception:  # invalid repo id and the like: treat as missing
                    hit = None
                found = isinstance(hit, str) and os.path.isfile(hit)
            if found:
                break
        if not found:
            missing.append(group[0])
    return missing


def _how_to_get(repo: str, env: str) -> str:
    if Path(repo).expanduser().is_dir() or repo.startswith((".", "/", "~")):
        return f"the folder {repo} is incomplete (set {env} to a complete diffusers folder)"
    return f"`hf download {repo}` while online (or set {env} to a local folder)"


def _model_problems(c: str, ids: dict, fast: bool, cache_dir=None) -> list:
    problems = []
    if _missing_files(ids["base"], _BASE_FILES, cache_dir):
        problems.append(f"Stable Diffusion base model {ids['base']}: {_how_to_get(ids['base'], 'GENDEF_SD_MODEL')}")
    if _missing_files(ids["controlnet"], _CONTROLNET_FILES, cache_dir):
        env = f"GENDEF_CONTROLNET_{c.upper()}"
        problems.append(f"ControlNet ({c}) {ids['controlnet']}: {_how_to_get(ids['controlnet'], env)}")
    if fast and _missing_files(ids["lcm_lora"], _LORA_FILES, cache_dir):
        problems.append(f"few-step LCM-LoRA {ids['lcm_lora']}: {_how_to_get(ids['lcm_lora'], 'GENDEF_LCM_LORA')}")
    return problems


def weights_status(control: str = "canny", base: Optional[str] = None, fast: bool = True,
                   controlnet: Optional[str] = None, lcm_lora: Optional[str] = None,
                   cache_dir=None) -> tuple:
    """(available, message) for stylisation with ``control``; reads only the disk.

    The message is meant for the UI: either what will be used, or which models
    are missing and the command that fetches each of them.
    """
    c = _check_control(control)
    missing = missing_message("edit", _LIBRARIES, "ControlNet stylize")
    if missing:
        return False, f"{missing}. Offline looks still work."
    ids = resolve_ids(c, base, controlnet, lcm_lora)
    problems = _model_problems(c, ids, fast, cache_dir)
    if c in _ANNOTATOR_FILES and _missing_files(ids["annotator"], [(f,) for f in _ANNOTATOR_FILES[c]], cache_dir):
        files = " ".join(_ANNOTATOR_FILES[c])
        problems.append(f"{c} annotator weights: `hf download {ids['annotator']} {files}` while online")
    if problems:
        offline = _offline()
        head = "Stylize weights are missing" + (" and the Hub is offline" if offline else "")
        tail = "" if offline else " They will be downloaded on first use (several GB)."
        return False, f"{head}: " + "; ".join(problems) + "." + tail + " Offline looks still work."
    mode = "few-step LCM" if fast else "standard"
    return True, f"Ready: {ids['base']} + ControlNet {ids['controlnet']} ({mode} mode)."


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(env or constants.HF_HUB_OFFLINE)


# --------------------------------------------------------------------------------------
# control images
# --------------------------------------------------------------------------------------
def load_annotator(control: str, local_files_only: bool = False):
    """The controlnet-aux annotator for ``control`` (not canny), loaded afresh: the caller keeps it
    (a Stylizer keeps its own) or passes it to :func:`make_control_image` as ``detector``."""
    c = _check_control(control)
    if c == "canny":
        raise UsageError("the canny control needs no annotator")
    repo = resolve_ids(c)["annotator"]
    if _offline() or local_files_only:
        if _missing_files(repo, [(f,) for f in _ANNOTATOR_FILES[c]]):
            raise StylizeUnavailable(
                f"The {c} annotator needs {', '.join(_ANNOTATOR_FILES[c])} from {repo}, "
                f"which is not in the local cache (offline). Use the 'canny' control, which needs no weights."
            )
    try:
        if c == "lineart":
            from controlnet_aux.lineart import LineartDetector as cls
        elif c in ("hed", "scribble"):
            from controlnet_aux.hed import HEDdetector as cls
        else:
            from controlnet_aux.midas import MidasDetector as cls
        return cls.from_pretrained(repo, local_files_only=local_files_only or _offline())
    except Exception as e:
        raise StylizeUnavailable(f"could not load the {c} annotator from {repo}: {_short(e)}") from None


def make_control_image(image, control: str = "canny", low_threshold: int = 100, high_threshold: int = 200,
                       detector=None, local_files_only: bool = False, resolution: Optional[int] = None) -> np.ndarray:
    """Condition image for the ControlNet, uint8 [H, W, 3] at the input's size.

    canny is OpenCV (no weights); the others run a controlnet-aux annotator,
    loaded for this call or passed in as ``detector`` (see :func:`load_annotator`).
    """
    import cv2

    c = _check_control(control)
    img = rgb_uint8(image)
    h, w = img.shape[:2]
    if c == "canny":
        lo, hi = int(low_threshold), int(high_threshold)
        if not 0 <= lo <= hi:
            raise UsageError(f"canny thresholds need 0 <= low <= high, got {lo}, {hi}")
        edges = cv2.Canny(img, lo, hi)
        return np.repeat(edges[..., None], 3, axis=-1)
    det = detector if detector is not None else load_annotator(c, local_files_only)
    # annotators resize their input's short side to this, in multiples of 64
    res = int(resolution or min(512, max(64, min(h, w))))
    kw = dict(detect_resolution=res, image_resolution=res, output_type="np")
    if c == "scribble":
        kw["scribble"] = True
    out = np.asarray(det(img, **kw))
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    out = rgb_uint8(out)
    if out.shape[:2] != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA if out.shape[0] > h else cv2.INTER_LINEAR)
        if c == "scribble":  # the scribble ControlNet was trained on binary strokes
            out = np.where(out >= 128, 255, 0).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------
# the stylizer
# --------------------------------------------------------------------------------------
def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{e.__class__.__name__}: {msg[0] if msg else ''}"[:300]


def _report(progress, frac: float, desc: str):
    """Call ``progress(fraction, text)``: fits gr.Progress and plain two-argument callbacks."""
    if progress is not None:
        try:
            progress(float(frac), desc)
        except TypeError:
            progress(float(frac))


class Stylizer:
    """A ControlNet (img2img or txt2img) Stable Diffusion pipeline applied to one image.

    ``size``: long side the image is processed at (SD 1.5 works best near 512;
    None keeps the input size). The output always has the input's size.
    """

    def __init__(self, pipe, control: str = "canny", fast: Optional[bool] = None, size: Optional[int] = None,
                 detector=None):
        from diffusers import LCMScheduler

        self.pipe = pipe
        self.control = _check_control(control)
        self.fast = isinstance(pipe.scheduler, LCMScheduler) if fast is None else bool(fast)
        self.size = None if size is None else int(size)
        self.detector = detector
        self.img2img = "strength" in inspect.signature(pipe.__call__).parameters
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, base: Optional[str] = None, controlnet: Optional[str] = None, control: str = "canny",
                        fast: bool = True, device: Optional[str] = None, local_files_only: bool = False,
                        progress: Optional[Callable] = None, lcm_lora: Optional[str] = None,
                        img2img: bool = True, size: Optional[int] = 512, dtype=None,
                        cache_dir=None) -> "Stylizer":
        """Load SD + ControlNet (+ LCM-LoRA when ``fast``), downloading on first use unless offline."""
        import torch

        c = _check_control(control)
        missing = missing_message("edit", _LIBRARIES, "ControlNet stylize")
        if missing:
            raise StylizeUnavailable(f"{missing}. Offline looks still work.")
        ids = resolve_ids(c, base, controlnet, lcm_lora)
        offline = local_files_only or _offline()
        if offline:
            problems = _model_problems(c, ids, fast, cache_dir)
            if problems:
                raise StylizeUnavailable(
                    "Stylize weights are not available offline: " + "; ".join(problems) + ". Offline looks still work."
                )
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        from diffusers import (
            ControlNetModel,
            LCMScheduler,
            StableDiffusionControlNetImg2ImgPipeline,
            StableDiffusionControlNetPipeline,
        )

        pipe_cls = StableDiffusionControlNetImg2ImgPipeline if img2img else StableDiffusionControlNetPipeline
        step = "ControlNet"
        try:
            _report(progress, 0.0, f"loading ControlNet {ids['controlnet']}")
            cn = ControlNetModel.from_pretrained(ids["controlnet"], torch_dtype=dtype, local_files_only=offline,
                                             cache_dir=cache_dir)
            step = "Stable Diffusion"
            _report(progress, 0.3, f"loading {ids['base']}")
            pipe = pipe_cls.from_pretrained(
                ids["base"], controlnet=cn, torch_dtype=dtype, local_files_only=offline, cache_dir=cache_dir,
                safety_checker=None, requires_safety_checker=False,
            )
            if fast:
                step = "LCM-LoRA"
                _report(progress, 0.8, f"loading few-step LCM-LoRA {ids['lcm_lora']}")
                pipe.load_lora_weights(ids["lcm_lora"], local_files_only=offline, cache_dir=cache_dir)
                pipe.fuse_lora()
                pipe.unload_lora_weights()  # keeps the fused weights, drops the per-layer LoRA overhead
                pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
        except StylizeUnavailable:
            raise
        except Exception as e:
            raise StylizeUnavailable(f"could not load the {step} weights ({_short(e)}). "
                                     + weights_status(c, ids["base"], fast, ids["controlnet"], ids["lcm_lora"], cache_dir)[1]) from None
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        _report(progress, 1.0, "stylizer ready")
        return cls(pipe, control=c, fast=fast, size=size)

    def _work_size(self, h: int, w: int) -> tuple:
        m = max(8, int(getattr(self.pipe, "vae_scale_factor", 8)))
        scale = 1.0 if self.size is None else self.size / max(h, w)
        return (max(m, int(round(h * scale / m)) * m), max(m, int(round(w * scale / m)) * m))

    def __call__(self, image, prompt: str, negative_prompt: str = "", strength: float = 0.6, steps: int = 4,
                 guidance: float = 1.0, seed: int = 0, control_scale: float = 1.0,
                 progress: Optional[Callable] = None, control_image=None) -> np.ndarray:
        """Stylised image, float32 [H, W, 3] in [0, 1], same size as ``image``.

        ``strength``: how far from the input the result may go (img2img);
        ``steps``: denoising steps that actually run (the cost), whatever the strength;
        ``guidance`` <= 1 disables classifier-free guidance (LCM's usual setting,
        the negative prompt is then unused).
        """
        import cv2
        import torch

        from ..viz import resize_image

        src = rgb_uint8(image)
        if not isinstance(prompt, str):
            raise UsageError("prompt must be text")
        strength = float(strength)
        if not 0.0 < strength <= 1.0:
            raise UsageError(f"strength must be in (0, 1], got {strength}")
        steps = int(steps)
        if not 1 <= steps <= 200:
            raise UsageError(f"steps must be between 1 and 200, got {steps}")
        guidance = float(guidance)
        if not 0.0 <= guidance <= 30.0:
            raise UsageError(f"guidance must be between 0 and 30, got {guidance}")
        h, w = src.shape[:2]
        wh, ww = self._work_size(h, w)
        work = cv2.resize(src, (ww, wh), interpolation=cv2.INTER_AREA if wh < h else cv2.INTER_CUBIC)
        if control_image is None:
            _report(progress, 0.0, f"{self.control} control image")
            if self.detector is None and self.control != "canny":
                self.detector = load_annotator(self.control)  # loaded once, kept by this stylizer
            ctrl = make_control_image(work, self.control, detector=self.detector)
        else:
            ctrl = cv2.resize(rgb_uint8(control_image), (ww, wh), interpolation=cv2.INTER_AREA)
        from PIL import Image

        kwargs = dict(
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            height=wh,
            width=ww,
            guidance_scale=guidance,
            controlnet_conditioning_scale=float(control_scale),
            generator=torch.Generator(device="cpu").manual_seed(int(seed)),
            output_type="np",
        )
        if self.img2img:
            # diffusers' img2img runs only the last int(N * strength) of N steps; choose N so
            # that ``steps`` is the number that actually runs (what the user waits for)
            n_total = math.ceil(steps / strength - 1e-9)
            limit = getattr(self.pipe.scheduler.config, "original_inference_steps", None) if self.fast else None
            if limit:
                n_total = min(n_total, int(limit))
            n_total = max(n_total, math.ceil(1.0 / strength - 1e-9), 1)
            n_run = max(1, min(int(n_total * strength), n_total))
            kwargs.update(image=Image.fromarray(work), control_image=Image.fromarray(ctrl), strength=strength,
                          num_inference_steps=n_total)
        else:
            n_run = steps
            kwargs.update(image=Image.fromarray(ctrl), num_inference_steps=steps)

        def on_step(pipe, i, t, cb_kwargs):
            _report(progress, (i + 1) / max(n_run, 1), f"diffusion step {i + 1}/{n_run}")
            return cb_kwargs

        with self._lock, torch.inference_mode():
            out = self.pipe(callback_on_step_end=on_step, **kwargs).images
        res = np.asarray(out[0], dtype=np.float32)
        if res.shape[:2] != (h, w):
            res = resize_image(res, (h, w))
        _report(progress, 1.0, "stylized")
        return np.clip(np.nan_to_num(res), 0.0, 1.0).astype(np.float32)


def get_stylizer(control: str = "canny", fast: bool = True, base: Optional[str] = None,
                 controlnet: Optional[str] = None, device: Optional[str] = None, local_files_only: bool = False,
                 progress: Optional[Callable] = None, size: Optional[int] = 512,
                 lcm_lora: Optional[str] = None, cache: Optional[Slot] = None) -> Stylizer:
    """A stylizer, rebuilt only when the models change.

    A Stable Diffusion pipeline takes GBs of memory, so a caller keeps one, the most recently
    requested configuration, in ``cache``: a :class:`gendef.editing.slot.Slot` the caller owns
    (the studio's services, a script). Without one, a new Stylizer is loaded and nothing is kept.
    """
    c = _check_control(control)
    ids = resolve_ids(c, base, controlnet, lcm_lora)
    key = (c, bool(fast), ids["base"], ids["controlnet"], ids["lcm_lora"], device, size)

    def build():
        return Stylizer.from_pretrained(
            base=ids["base"], controlnet=ids["controlnet"], control=c, fast=fast, device=device,
            local_files_only=local_files_only, progress=progress, lcm_lora=ids["lcm_lora"], size=size,
        )

    return build() if cache is None else cache.get(key, build)

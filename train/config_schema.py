"""Every training setting, defined once: :class:`TrainConfig` (meaning, unit, default, rule per key).

``train/config.py`` starts a run's dict from :func:`defaults` and lays the YAML and the
``key=value`` overrides over it; ``validate_config`` then makes one :class:`TrainConfig` from it (every
key checked once, one line on the first bad one) and, from its ``model:`` / ``disc:`` sections, the
networks' settings (``gendef.generator.config``: keys, ranges and the size estimate), all before a
run folder exists. The training loop reads the dict (``TrainConfig.as_dict``) and builds the networks
from the checked objects (:class:`Settings`).

Adding a trainer key is one line here: a ``setting(default, meaning, rule)`` field of TrainConfig.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

from gendef.data.times import TIME_SAMPLINGS
from gendef.errors import ModelConfigError
from gendef.generator.build import check_discriminator_config, check_model_budget
from gendef.generator.config import DiscriminatorConfig, GenDeFConfig, validate_model_config
from gendef.generator.losses import REG_FORMS
from gendef.settings import Rule, check_fields, flat_defaults, from_flat, rules, setting, settings

from train.errors import ConfigError

__all__ = ["TrainConfig", "Settings", "TRAIN_SCHEMA", "defaults", "check_all_keys"]

_POS = Rule("int", 1, 1 << 31)
_COUNT = Rule("int", 0, 1 << 31)  # 0 = off
_NONNEG = Rule("float", 0, math.inf)
_TEXT = Rule("text")
_OPT_TEXT = Rule("text", optional=True)
_FLAG = Rule("bool")
_SECTION = Rule("section", note="a mapping of key: value")


def _choice(*choices) -> Rule:
    return Rule("choice", choices=choices)


@settings
class TrainConfig:
    """The trainer's settings: a YAML's common keys, its ``pretrain:`` / ``finetune:`` section (the same
    keys, for one stage) and ``key=value`` overrides, in that order; ``model:`` / ``disc:`` / ``eval:``
    are sections of their own."""

    # data
    data: Optional[str] = setting(None, "the dataset: a folder or .zip of frame folders, or a folder of videos",
                                  _OPT_TEXT, "path")
    resolution: Optional[int] = setting(None, "side the frames are resized to; null = model.resolution",
                                        Rule("int", 8, 2048, pow2=True, optional=True), "pixels")
    hflip: bool = setting(False, "mirror half the training items", _FLAG)
    num_workers: int = setting(0, "data loader worker processes", Rule("int", 0, 256))
    clip_frames: int = setting(3, "frames per clip in stage 2", Rule("int", 2, 64), "frames")
    max_dist: int = setting(32, "largest time span of a clip", Rule("int", 2, 1 << 20), "frames")
    time_sampling: str = setting("stylegan_v", "clip times: stylegan_v (official: power-of-two gaps, fractional G "
                                 "times; gendef.data.times) or uniform (ours before)", _choice(*TIME_SAMPLINGS))
    max_num_frames: int = setting(1024, "generated clips borrow a real video's length, capped here (StyleGAN-V); "
                                  "at least clip_frames", Rule("int", 1, 1 << 31), "frames")
    gen_time_range: int = setting(128, "time_sampling=uniform only: G's integer start times lie below this",
                                  Rule("int", 1, 1 << 20), "frames")
    chunk_frames: int = setting(0, "> 0: every video becomes consecutive chunks of this many frames (official "
                                "TaiChi/YTB: 512); 0 = whole videos", _COUNT, "frames")
    chunk_min_frames: int = setting(128, "chunks shorter than this are dropped (official: 128)",
                                    Rule("int", 1, 1 << 31), "frames")
    resize_mode: str = setting("crop", "crop: short side + centre crop; squash: whole frame to a square, bicubic "
                               "(official)", _choice("crop", "squash"))
    stage1_frames: str = setting("all", "stage 1 items: all (every frame) or per_video (one random frame per "
                                 "video, official)", _choice("all", "per_video"))
    video_head_init: str = setting("random", "stage 2's new D projection head: random, or image_row (official: "
                                   "stage 1's output row)", _choice("random", "image_row"))
    init_weights: str = setting("ema", "stage 2 starts G (and G_ema) from stage 1's ema or raw (official) weights",
                                _choice("ema", "raw"))
    # run
    output_dir: Optional[str] = setting(None, "the run folder", _OPT_TEXT, "path")
    seed: int = setting(0, "random seed of the run", Rule("int", 0, 2**32 - 1))
    max_steps: Optional[int] = setting(None, "stop after this many steps; null = no step limit",
                                       Rule("int", 0, 1 << 40, optional=True), "steps")
    max_kimg: Optional[float] = setting(25000, "stop after this many thousand images (a clip counts its frames)",
                                        Rule("float", 0, 1e9, optional=True), "kimg")
    resume: Optional[str] = setting(None, "a checkpoint to continue from (latest = the newest intact one)",
                                    _OPT_TEXT, "path")
    resume_pack: Optional[str] = setting(None, "a state pack folder to continue from (train/state_pack.py, "
                                         "train/README 9)", _OPT_TEXT, "path")
    pack_out: Optional[str] = setting(None, "write a state pack here when the run finishes", _OPT_TEXT, "path")
    pack_precision: str = setting("compact", "compact (bf16 G_ema-G, D, moments: sky128 in 43 MiB) or lossless "
                                  "(fp32)", _choice("compact", "lossless"))
    init: Optional[str] = setting(None, "stage 2: the stage-1 output folder that defines the networks",
                                  _OPT_TEXT, "path")
    mixed_precision: str = setting("no", "accelerate's mixed precision", _choice("no", "fp16", "bf16"))
    log_every: int = setting(10, "log scalars every N steps", _POS, "steps")
    ckpt_every: int = setting(1000, "write a checkpoint every N steps", _POS, "steps")
    keep_checkpoints: int = setting(3, "checkpoints kept on disk", Rule("int", 1, 10000))
    sample_every: int = setting(1000, "write preview samples every N steps (0 = never)", _COUNT, "steps")
    sample_count: int = setting(16, "videos per preview", Rule("int", 1, 1024))
    sample_frames: int = setting(16, "frames per preview video", Rule("int", 1, 4096), "frames")
    health_seeds: int = setting(2, "stage 2's field monitor (train/monitor.py): fixed-seed G_ema samples per "
                                "check (0 = off)", Rule("int", 0, 64))
    health_frames: int = setting(8, "frames per field-monitor sample", Rule("int", 2, 256), "frames")
    health_strip_every: int = setting(1000, "a field-monitor PNG strip every N steps (0 = none)", _COUNT, "steps")
    health_data_speed: Optional[float] = setting(None, "the data's speed (else measured on the training data)",
                                                 Rule("float", 0, 100, optional=True), "% of the side per frame")
    eval_every: int = setting(0, "compute the metrics every N steps (0 = never)", _COUNT, "steps")
    eval_metrics: str = setting("fid", "comma-separated metric names (gendef.metrics)", _TEXT)
    eval: Dict[str, Any] = setting({}, "arguments of gendef.metrics.evaluate (positive integers)", _SECTION)
    push_to_hub: Optional[str] = setting(None, "a Hub repo id to push the export to", _OPT_TEXT)
    progress: bool = setting(True, "show a progress bar", _FLAG)
    # optimisation
    batch_size: int = setting(64, "global batch (all processes and accumulation steps)", Rule("int", 1, 1 << 20),
                              "items")
    grad_accum: int = setting(1, "gradient accumulation steps", Rule("int", 1, 1 << 20))
    lr: float = setting(0.0025, "G's learning rate", Rule("float", 0, math.inf))
    lr_d: Optional[float] = setting(None, "D's learning rate; null = lr", Rule("float", 0, math.inf, optional=True))
    betas: list = setting([0.0, 0.99], "Adam's betas", Rule("custom", note="two numbers in [0, 1)"))
    r1_gamma: float = setting(0.5, "R1 weight gamma", _NONNEG)
    r1_interval: int = setting(16, "lazy R1 every N steps", _POS, "steps")
    ema_kimg: float = setting(20.0, "G_ema half-life", _NONNEG, "kimg")
    ema_rampup: Optional[float] = setting(0.05, "G_ema half-life ramp-up (null = none)",
                                          Rule("float", 0, 1e6, optional=True))
    augment: str = setting("ada", "D's augmentation: ada, fixed or none", _choice("ada", "fixed", "none"))
    aug_p: float = setting(0.0, "augmentation probability (start value with ada)", Rule("float", 0, 1))
    ada_target: float = setting(0.6, "ADA's target for sign(D(real))", Rule("float", 0, 1))
    ada_interval: int = setting(4, "adjust ADA's p every N steps", _POS, "steps")
    ada_kimg: float = setting(100, "images for p to go 0 -> 1 (official StyleGAN-V / GenDeF: 100)",
                              Rule("float", 1e-9, 1e12), "kimg")
    lambda_reg: float = setting(1.0, "weight of L_reg (paper: 1)", _NONNEG)
    reg_form: str = setting("flow_change", "L_reg's form (gendef.generator.losses.REG_FORMS): flow_change (eq. 4), "
                            "official or legacy", _choice(*REG_FORMS))
    reg_every: int = setting(1, "L_reg every N steps", _POS, "steps")
    # stage-2 guards against a field that fakes texture (train/README 11); 1.0 / 0.0 = the paper's recipe
    lr_deformation_mult: float = setting(1.0, "G_d's learning rate = lr * this", Rule("float", 0, 100))
    lambda_field_smooth: float = setting(0.0, "edge-aware spatial smoothness of m = grid - identity, beside L_reg",
                                         _NONNEG)
    d_warmup_kimg: float = setting(0.0, "stage 2 trains D alone for its first this many kimg (G and G_ema keep "
                                   "stage 1's weights; the zero field's still clips teach D that real clips move)",
                                   Rule("float", 0, 1e6), "kimg")
    drift_start_steps: int = setting(0, "stage 2 first fits G_d (and the motion code) for this many steps to a "
                                     "coherent drift, past the blur valley (train/drift_start.py; 0 = off; not on resume)",
                                     Rule("int", 0, 100000), "steps")
    drift_start_speed: float = setting(1.0, "the drift start's speed (its top row's)", Rule("float", 0, 25),
                                       "% of the side per frame")
    drift_start_profile: str = setting("uniform", "the drift start's speed by row (train/drift_start.py): uniform, "
                                       "or sky (slowing to a still horizon)", _choice("uniform", "sky"))
    freeze_canonical: bool = setting(False, "stage 2 keeps G_c fixed ('pt. then fix')", _FLAG)
    reset_deformation: bool = setting(True, "stage 2 re-initialises G_d's last ToOut as deformation_init says",
                                      _FLAG)
    retime_motion: bool = setting(False, "stage 2 takes model.time_min_period / time_max_period / "
                                  "motion_anchor_spacing from its own config instead of stage 1's config.json "
                                  "(stage 1 never trains the motion code; train/README 11)", _FLAG)
    from_scratch: bool = setting(False, "stage 2 without stage 1 (Table 4 'w/o pt.'): networks from model/disc, "
                                 "init unused", _FLAG)
    # speed switches (issue 20; train/README 8, benchmarks/gpu_ladder.py picks the GPU combination)
    data_on_device: Any = setting("auto", "stage 1's frames as uint8 on the GPU when they fit "
                                  "(train/device_data.py)", _choice("auto", True, False))
    sync_every: int = setting(1, "read the NaN guard's flag from the device every N steps (1 = every step)",
                              _POS, "steps")
    adam: str = setting("auto", "Adam's implementation: auto (fused on CUDA), fused, foreach or loop",
                        _choice("auto", "fused", "foreach", "loop"))
    channels_last: bool = setting(False, "G and D weights and D's inputs in channels_last memory format", _FLAG)
    compile: bool = setting(False, "torch.compile G_c and D (R1's double backward stays eager)", _FLAG)
    compile_backend: str = setting("inductor", "torch.compile's backend (the CPU tests use aot_eager)",
                                   _choice("inductor", "aot_eager", "eager"))
    checkpoint_deformation: bool = setting(False, "stage 2: recompute per-frame G_d + warp in the backward "
                                           "(less memory)", _FLAG)
    cpu_threads: int = setting(1, "CPU runs: intra-op threads (0 = torch's default, one per core; 1 measured "
                               "fastest on the shared 2-core VM)", Rule("int", 0, 1024), "threads")
    # networks
    model: Dict[str, Any] = setting({}, "GenDeF's flat keys (gendef.generator.config.GenDeFConfig)", _SECTION)
    disc: Dict[str, Any] = setting({}, "the discriminator's keys (gendef.generator.config.DiscriminatorConfig)",
                                   _SECTION)

    def __post_init__(self):
        check_fields(self, ConfigError)
        for key in ("model", "disc", "eval"):
            if not isinstance(getattr(self, key), dict):
                raise ConfigError(f"{key} must be a mapping, got {getattr(self, key)!r}")
        if self.max_dist < self.clip_frames:
            raise ConfigError(f"max_dist ({self.max_dist}) must be >= clip_frames ({self.clip_frames})")
        if self.max_num_frames < self.clip_frames:
            raise ConfigError(f"max_num_frames must be an integer >= clip_frames, got {self.max_num_frames!r}")
        _check_betas(self.betas)
        _check_eval(self.eval)

    @classmethod
    def from_dict(cls, cfg: Dict[str, Any]) -> "TrainConfig":
        return from_flat(cls, cfg, "train", ConfigError)

    def as_dict(self) -> Dict[str, Any]:
        """The dict the training loop reads (``cfg["lr"]``), sections copied."""
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _copy(value):
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else list(value) if isinstance(value, list) else value


TRAIN_SCHEMA = rules(TrainConfig)


def defaults() -> Dict[str, Any]:
    """A fresh dict of every key's default (what a run starts from before the YAML)."""
    return {k: _copy(v) for k, v in flat_defaults(TrainConfig).items()}


@dataclass(frozen=True)
class Settings:
    """A checked training start: the trainer's settings and the networks' (``model`` is None in stage 2,
    whose networks come from ``init``). The networks are built from these objects, unchecked."""

    train: TrainConfig
    model: Optional[GenDeFConfig]
    disc: DiscriminatorConfig


def check_all_keys(cfg: dict, stage: str) -> Settings:
    """Every key of ``cfg`` checked once (ConfigError, one line); ``cfg`` is normalised in place."""
    train = TrainConfig.from_dict(cfg)
    cfg.update(train.as_dict())
    model, disc = _check_networks(train, stage)
    return Settings(train, model, disc)


def _check_betas(betas) -> None:
    ok = isinstance(betas, (list, tuple)) and len(betas) == 2
    ok = ok and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)
    if not ok:
        raise ConfigError(f"betas must be two numbers in [0, 1), e.g. [0.0, 0.99], got {betas!r}")


def _check_eval(section) -> None:
    from gendef.metrics import evaluate

    params = inspect.signature(evaluate).parameters
    valid = sorted(k for k in params if k not in ("model", "data", "metrics", "device", "data_options", "cache"))
    if not isinstance(section, dict):
        raise ConfigError(f"eval must be a mapping, got {section!r}")
    unknown = sorted(k for k in section if k not in valid)
    if unknown:
        raise ConfigError(f"unknown eval key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")
    for k, v in section.items():
        if isinstance(params[k].default, int) and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ConfigError(f"eval.{k} must be a positive integer, got {v!r}")


def _check_networks(train: TrainConfig, stage: str):
    """model./disc. sections: keys, ranges and size, before any weight is allocated. Stage 2 keeps
    init's networks, so its ``model:`` section is only checked for keys and ranges."""
    builds_model = stage == "pretrain" or train.from_scratch
    try:
        model = GenDeFConfig.from_flat(train.model) if builds_model else None
        if model is None:
            validate_model_config(train.model)
        else:
            check_model_budget(model)
    except ModelConfigError as e:
        raise ConfigError(f"model: {e}") from None
    default_res = flat_defaults(GenDeFConfig)["resolution"]
    res = train.resolution or (model.resolution if model else train.model.get("resolution", default_res))
    disc = {"resolution": res, **train.disc}
    if stage == "finetune":
        disc["num_frames"] = int(train.clip_frames)
    try:
        return model, check_discriminator_config(disc)
    except ModelConfigError as e:
        raise ConfigError(f"disc: {e}") from None

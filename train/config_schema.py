"""Every training config key with its type and range, checked before a run folder exists.

``validate_config`` (train/config.py) calls :func:`check_all_keys` last: a wrong value anywhere
(top level, ``model.``, ``disc.``, ``eval.``) fails at start with one line, instead of a
traceback at step 10 after logs and a config were written. The ``model.`` and ``disc.`` sections
reuse the networks' own schema (gendef/generator/config.py), including the size estimate.
"""
from __future__ import annotations

import inspect
import math

from gendef.generator.config import Key, check_discriminator_config, check_value
from gendef.errors import ModelConfigError

from train.errors import ConfigError

__all__ = ["TRAIN_SCHEMA", "check_all_keys"]

_POS = Key("int", 1, 1 << 31)
_COUNT = Key("int", 0, 1 << 31)  # 0 = off
_NONNEG = Key("float", 0, math.inf)
_PATH = Key("path")
_OPT_PATH = Key("path", optional=True)
_FLAG = Key("bool")

# keys whose rule is already in validate_config (recipe switches, mixed_precision, augment) map to None
TRAIN_SCHEMA = {
    "data": _PATH,
    "resolution": Key("int", 8, 2048, pow2=True, optional=True),
    "hflip": _FLAG,
    "num_workers": Key("int", 0, 256),
    "clip_frames": Key("int", 2, 64),
    "max_dist": Key("int", 2, 1 << 20),
    "time_sampling": None,
    "max_num_frames": None,
    "gen_time_range": Key("int", 1, 1 << 20),
    "chunk_frames": _COUNT,
    "chunk_min_frames": Key("int", 1, 1 << 31),
    "resize_mode": Key("choice", choices=("crop", "squash")),
    "stage1_frames": Key("choice", choices=("all", "per_video")),
    "video_head_init": Key("choice", choices=("random", "image_row")),
    "init_weights": Key("choice", choices=("ema", "raw")),
    "output_dir": _PATH,
    "seed": Key("int", 0, 2**32 - 1),
    "max_steps": Key("int", 0, 1 << 40, optional=True),
    "max_kimg": Key("float", 0, 1e9, optional=True),
    "resume": _OPT_PATH,
    "resume_pack": _OPT_PATH,
    "pack_out": _OPT_PATH,
    "pack_precision": None,  # checked by train/state_pack.py (compact | lossless)
    "init": _OPT_PATH,
    "mixed_precision": None,
    "log_every": _POS,
    "ckpt_every": _POS,
    "keep_checkpoints": Key("int", 1, 10000),
    "sample_every": _COUNT,
    "sample_count": Key("int", 1, 1024),
    "sample_frames": Key("int", 1, 4096),
    "health_seeds": Key("int", 0, 64),
    "health_frames": Key("int", 2, 256),
    "health_strip_every": _COUNT,
    "health_data_speed": Key("float", 0, 100, optional=True),
    "eval_every": _COUNT,
    "eval_metrics": Key("path"),
    "eval": None,  # checked against gendef.metrics.evaluate's arguments below
    "push_to_hub": _OPT_PATH,
    "progress": _FLAG,
    "batch_size": Key("int", 1, 1 << 20),
    "grad_accum": Key("int", 1, 1 << 20),
    "lr": Key("float", 0, math.inf),
    "lr_d": Key("float", 0, math.inf, optional=True),
    "betas": None,  # two numbers in [0, 1), below
    "r1_gamma": _NONNEG,
    "r1_interval": _POS,
    "ema_kimg": _NONNEG,
    "ema_rampup": Key("float", 0, 1e6, optional=True),
    "augment": None,
    "aug_p": Key("float", 0, 1),
    "ada_target": Key("float", 0, 1),
    "ada_interval": _POS,
    "ada_kimg": Key("float", 1e-9, 1e12),
    "lambda_reg": _NONNEG,
    "reg_form": None,
    "reg_every": _POS,
    "lr_deformation_mult": Key("float", 0, 100),
    "lambda_field_smooth": _NONNEG,
    "freeze_canonical": _FLAG,
    "reset_deformation": _FLAG,
    "retime_motion": _FLAG,
    "from_scratch": _FLAG,
    "data_on_device": Key("choice", choices=("auto", True, False)),
    "sync_every": _POS,
    "adam": Key("choice", choices=("auto", "fused", "foreach", "loop")),
    "channels_last": _FLAG,
    "compile": _FLAG,
    "compile_backend": Key("choice", choices=("inductor", "aot_eager", "eager")),
    "checkpoint_deformation": _FLAG,
    "model": None,  # gendef.generator.config
    "disc": None,  # gendef.generator.config
}


def check_all_keys(cfg: dict, stage: str) -> None:
    """Raise ConfigError (one line) for the first key whose value cannot be used later in the run."""
    for key, spec in TRAIN_SCHEMA.items():
        if spec is not None and key in cfg:
            cfg[key] = _checked(key, spec, cfg[key])
    if cfg["max_dist"] < cfg["clip_frames"]:
        raise ConfigError(f"max_dist ({cfg['max_dist']}) must be >= clip_frames ({cfg['clip_frames']})")
    _check_betas(cfg["betas"])
    if cfg.get("pack_precision", "compact") not in ("compact", "lossless"):
        raise ConfigError(f"pack_precision must be compact or lossless, got {cfg['pack_precision']!r}")
    _check_eval(cfg["eval"])
    _check_networks(cfg, stage)


def _checked(key: str, spec: Key, value):
    if spec.kind == "path":
        if value is None and spec.optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key} must be a non-empty text (a path or name), got {value!r}")
        return value
    try:
        return check_value(key, spec, value)
    except ModelConfigError as e:
        raise ConfigError(str(e)) from None


def _check_betas(betas) -> None:
    ok = isinstance(betas, (list, tuple)) and len(betas) == 2
    ok = ok and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)
    if not ok:
        raise ConfigError(f"betas must be two numbers in [0, 1), e.g. [0.0, 0.99], got {betas!r}")


def _check_eval(section) -> None:
    from gendef.metrics import evaluate

    params = inspect.signature(evaluate).parameters
    valid = sorted(k for k in params if k not in ("model", "data", "metrics", "device", "data_options"))
    if not isinstance(section, dict):
        raise ConfigError(f"eval must be a mapping, got {section!r}")
    unknown = sorted(k for k in section if k not in valid)
    if unknown:
        raise ConfigError(f"unknown eval key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")
    for k, v in section.items():
        if isinstance(params[k].default, int) and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ConfigError(f"eval.{k} must be a positive integer, got {v!r}")


def _check_networks(cfg: dict, stage: str) -> None:
    """model./disc. sections: schema, unknown keys and size, before any weight is allocated."""
    from gendef.generator.gendef import GenDeF

    builds_model = stage == "pretrain" or cfg.get("from_scratch")
    try:
        model = cfg["model"]
        if builds_model:
            model = GenDeF.check_config(model)
        else:  # stage 2 keeps init's networks; the section must still be well-formed
            from gendef.generator.config import validate_model_config

            model = validate_model_config(model, GenDeF.config_keys())
    except ModelConfigError as e:
        raise ConfigError(f"model: {e}") from None
    default_res = inspect.signature(GenDeF.__init__).parameters["resolution"].default
    res = cfg["resolution"] or model.get("resolution", default_res)
    disc = {"resolution": res, **cfg["disc"]}
    if stage == "finetune":
        disc["num_frames"] = int(cfg["clip_frames"])
    try:
        check_discriminator_config(disc)
    except ModelConfigError as e:
        raise ConfigError(f"disc: {e}") from None

"""Training config: defaults, YAML + ``key=value`` overrides, validation, the command line.

Config = one YAML with common keys plus ``pretrain:`` / ``finetune:`` sections, then
``key=value`` overrides from the command line (dotted keys reach into ``model.`` / ``disc.`` /
``eval.``). Everything is plain data (a dict); validation happens before anything is allocated.
"""
from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path
from typing import Iterable, Optional

import yaml

from train.errors import ConfigError

__all__ = ["DEFAULTS", "STAGES", "ConfigError", "load_config", "validate_config", "per_process_batch",
           "flat_scalars", "parse_args", "data_options"]

DEFAULTS = {
    # data
    "data": None,
    "resolution": None,  # defaults to model.resolution
    "hflip": False,
    "num_workers": 0,
    "clip_frames": 3,
    "max_dist": 32,
    "time_sampling": "stylegan_v",  # official: power-of-two gaps, fractional G times (gendef.data.times); "uniform": ours before
    "max_num_frames": 1024,  # StyleGAN-V: generated clips borrow a real video's length, capped here
    "gen_time_range": 128,  # time_sampling=uniform only: G's integer start times lie below this
    # official GenDeF data options (train/README 10, issue 22); the defaults are ours before
    "chunk_frames": 0,  # >0: every video becomes consecutive chunks of this many frames (official TaiChi/YTB: 512)
    "chunk_min_frames": 128,  # chunks shorter than this are dropped (official: 128)
    "resize_mode": "crop",  # crop: short side + centre crop | squash: whole frame to a square, bicubic (official)
    "stage1_frames": "all",  # all: every frame is an item | per_video: one random frame per video (official)
    "video_head_init": "random",  # stage 2's new D projection head: random | image_row (official: stage 1's output row)
    "init_weights": "ema",  # stage 2 starts G (and G_ema) from stage 1's: ema | raw (official)
    # run
    "output_dir": None,
    "seed": 0,
    "max_steps": None,
    "max_kimg": 25000,
    "resume": None,
    "resume_pack": None,  # a state pack folder to continue from (train/state_pack.py, train/README 9)
    "pack_out": None,  # write a state pack here when the run finishes
    "pack_precision": "compact",  # compact (bf16 G_ema-G, D, moments: sky128 in 43 MiB) | lossless (fp32)
    "init": None,
    "mixed_precision": "no",
    "log_every": 10,
    "ckpt_every": 1000,
    "keep_checkpoints": 3,
    "sample_every": 1000,
    "sample_count": 16,
    "sample_frames": 16,
    # stage 2's field monitor (train/monitor.py): statistics at every log step, a PNG strip now and then
    "health_seeds": 2,  # fixed-seed G_ema samples per check (0 = off)
    "health_frames": 8,
    "health_strip_every": 1000,  # 0 = no strips
    "health_data_speed": None,  # the data's speed in % of the side per frame, if known (else: warn when static)
    "eval_every": 0,
    "eval_metrics": "fid",
    "eval": {},
    "push_to_hub": None,
    "progress": True,
    # optimisation
    "batch_size": 64,
    "grad_accum": 1,
    "lr": 0.0025,
    "lr_d": None,
    "betas": [0.0, 0.99],
    "r1_gamma": 0.5,
    "r1_interval": 16,
    "ema_kimg": 20.0,
    "ema_rampup": 0.05,
    "augment": "ada",
    "aug_p": 0.0,
    "ada_target": 0.6,
    "ada_interval": 4,
    "ada_kimg": 100,
    "lambda_reg": 1.0,
    "reg_form": "flow_change",  # L_reg form (gendef.generator.losses.REG_FORMS): flow_change (eq. 4) | official | legacy
    "reg_every": 1,
    # stage-2 guards against a field that fakes texture (train/README 11); 1.0 / 0.0 = the paper's recipe
    "lr_deformation_mult": 1.0,  # G_d's learning rate = lr * this
    "lambda_field_smooth": 0.0,  # edge-aware spatial smoothness of m = grid - identity, beside L_reg
    "freeze_canonical": False,
    "reset_deformation": True,
    # stage 2 takes model.time_min_period / time_max_period / motion_anchor_spacing from its own config
    # instead of stage 1's config.json (stage 1 never trains the motion code; train/README 11)
    "retime_motion": False,
    "from_scratch": False,  # stage 2 without stage 1 (Table 4 "w/o pt."): networks from model/disc, init unused
    # speed switches (issue 20; train/README 8, benchmarks/gpu_ladder.py picks the GPU combination)
    "data_on_device": "auto",  # stage 1's frames as uint8 on the GPU when they fit (train/device_data.py)
    "sync_every": 1,  # read the NaN guard's flag from the device every N steps (1 = every step, as before)
    "adam": "auto",  # auto (fused on CUDA) | fused | foreach | loop
    "channels_last": False,  # G and D weights and D's inputs in channels_last memory format
    "compile": False,  # torch.compile G_c and D (R1's double backward stays eager)
    "compile_backend": "inductor",  # inductor | aot_eager | eager (the CPU tests use aot_eager)
    "checkpoint_deformation": False,  # stage 2: recompute per-frame G_d + warp in the backward (less memory)
    # networks
    "model": {},
    "disc": {},
}

STAGES = ("pretrain", "finetune")

def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_config(path: Optional[str], overrides: Iterable[str] = (), stage: str = "pretrain") -> dict:
    """Defaults <- YAML common keys <- YAML ``stage`` section <- ``key=value`` overrides
    (dotted keys reach into ``model.`` / ``disc.`` / ``eval.``)."""
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config {path}: no such file")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: expected a mapping at the top level")
        section = raw.get(stage) or {}
        for layer in ({k: v for k, v in raw.items() if k not in STAGES}, section):
            for k, v in layer.items():
                _set(cfg, k, v, source=str(path))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        k = k.strip().lstrip("-")
        if k in STAGES:
            raise ConfigError(f"override {item!r}: set the key directly (the stage section is already applied)")
        _set(cfg, k, _parse_value(v), source="command line")
    if cfg["mixed_precision"] is False:  # YAML 1.1 reads a bare `no` as false
        cfg["mixed_precision"] = "no"
    return cfg


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _coerce(value):
    """YAML 1.1 reads '1e-3' as a string; numbers written that way are meant as floats."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    return value


def _set(cfg: dict, key: str, value, source: str) -> None:
    value = _coerce(value)
    parts = key.split(".")
    if parts[0] not in DEFAULTS:
        raise ConfigError(f"{source}: unknown config key {parts[0]!r}; known keys: {', '.join(sorted(DEFAULTS))}")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"{source}: {key!r}: {part!r} is not a section")
        node = node[part]
    if isinstance(DEFAULTS.get(key), dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} must be a mapping")
        node[parts[-1]] = {**node.get(parts[-1], {}), **value}
    else:
        node[parts[-1]] = value


def validate_config(cfg: dict, stage: str) -> None:
    if not cfg["data"]:
        raise ConfigError("no dataset: pass data=PATH (a folder or .zip of frame folders, or a folder of videos)")
    if not cfg["output_dir"]:
        raise ConfigError("no output folder: pass output_dir=PATH")
    if stage == "finetune" and not cfg["init"] and not cfg["from_scratch"]:
        raise ConfigError("stage 2 needs init=<stage-1 output folder> (also when resuming: it defines the networks)")
    for k in ("batch_size", "grad_accum", "r1_interval", "ckpt_every", "log_every", "ada_interval"):
        if not isinstance(cfg[k], int) or cfg[k] < 1:
            raise ConfigError(f"{k} must be a positive integer, got {cfg[k]!r}")
    if cfg["max_steps"] is not None and (not isinstance(cfg["max_steps"], int) or cfg["max_steps"] < 0):
        raise ConfigError(f"max_steps must be a non-negative integer, got {cfg['max_steps']!r}")
    if cfg["mixed_precision"] not in ("no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision must be no, fp16 or bf16, got {cfg['mixed_precision']!r}")
    if cfg["augment"] not in ("ada", "fixed", "none"):
        raise ConfigError(f"augment must be ada, fixed or none, got {cfg['augment']!r}")
    if not isinstance(cfg["ada_kimg"], (int, float)) or cfg["ada_kimg"] <= 0:
        raise ConfigError(f"ada_kimg must be a positive number, got {cfg['ada_kimg']!r}")
    for k in ("lr", "r1_gamma", "lambda_reg", "ema_kimg", "aug_p"):
        if not isinstance(cfg[k], (int, float)) or cfg[k] < 0:
            raise ConfigError(f"{k} must be a non-negative number, got {cfg[k]!r}")
    _validate_recipe(cfg)
    from train.config_schema import check_all_keys  # every other key, model./disc./eval. sections

    check_all_keys(cfg, stage)


def _validate_recipe(cfg: dict) -> None:
    """Issue 11's training switches (time sampling, L_reg form, w/o pt.)."""
    from gendef.data.times import TIME_SAMPLINGS
    from gendef.generator.losses import REG_FORMS

    if cfg["time_sampling"] not in TIME_SAMPLINGS:
        raise ConfigError(f"time_sampling must be one of {', '.join(TIME_SAMPLINGS)}, got {cfg['time_sampling']!r}")
    if cfg["reg_form"] not in REG_FORMS:
        raise ConfigError(f"reg_form must be one of {', '.join(REG_FORMS)}, got {cfg['reg_form']!r}")
    if not isinstance(cfg["max_num_frames"], int) or cfg["max_num_frames"] < cfg["clip_frames"]:
        raise ConfigError(f"max_num_frames must be an integer >= clip_frames, got {cfg['max_num_frames']!r}")
    if not isinstance(cfg["from_scratch"], bool):
        raise ConfigError(f"from_scratch must be true or false, got {cfg['from_scratch']!r}")



def data_options(cfg: dict) -> dict:
    """How the dataset is cut and resized (chunks, crop/squash): the same for training and for the
    metrics' real set, so FVD/FID compare against the videos the model was trained on."""
    return {"chunk": int(cfg["chunk_frames"]), "chunk_min": int(cfg["chunk_min_frames"]), "resize": cfg["resize_mode"]}


def per_process_batch(cfg: dict, num_processes: int) -> int:
    total = cfg["batch_size"]
    div = num_processes * cfg["grad_accum"]
    if total % div:
        raise ConfigError(f"batch_size {total} is not divisible by processes x grad_accum = {div}")
    return total // div


def flat_scalars(cfg: dict, prefix: str = "") -> dict:
    """Config flattened to scalars (TensorBoard's hparams only take those)."""
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flat_scalars(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)):
            out[prefix + k] = v
        else:
            out[prefix + k] = str(v)
    return out


def parse_args(argv, stage: str, description: str) -> dict:
    """``--config FILE key=value ...`` -> a validated config (raises ConfigError)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config (train/configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data=... output_dir=... max_steps=100")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides, stage)
    validate_config(cfg, stage)
    return cfg

"""Training config: YAML + ``key=value`` overrides over the defaults, validation, the command line.

Config = one YAML with common keys plus ``pretrain:`` / ``finetune:`` sections, then
``key=value`` overrides from the command line (dotted keys reach into ``model.`` / ``disc.`` /
``eval.``). Every key is defined once, in ``TrainConfig`` (train/config_schema.py); the loop reads
the dict made from it; validation happens once, before anything is allocated.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Iterable, Optional

import yaml

from train.config_schema import Settings, check_all_keys, defaults
from train.errors import ConfigError

__all__ = ["DEFAULTS", "STAGES", "ConfigError", "load_config", "validate_config", "per_process_batch",
           "flat_scalars", "parse_args", "data_options"]

DEFAULTS = defaults()  # every key's default, from TrainConfig (train/config_schema.py)

STAGES = ("pretrain", "finetune")

def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_config(path: Optional[str], overrides: Iterable[str] = (), stage: str = "pretrain") -> dict:
    """Defaults <- YAML common keys <- YAML ``stage`` section <- ``key=value`` overrides
    (dotted keys reach into ``model.`` / ``disc.`` / ``eval.``)."""
    cfg = defaults()
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


def validate_config(cfg: dict, stage: str) -> Settings:
    """What ``stage`` needs, then every key once (TrainConfig, the model and disc sections with their
    size estimates); ``cfg`` is normalised in place and the checked objects are returned."""
    if not cfg["data"]:
        raise ConfigError("no dataset: pass data=PATH (a folder or .zip of frame folders, or a folder of videos)")
    if not cfg["output_dir"]:
        raise ConfigError("no output folder: pass output_dir=PATH")
    if stage == "finetune" and not cfg["init"] and not cfg["from_scratch"]:
        raise ConfigError("stage 2 needs init=<stage-1 output folder> (also when resuming: it defines the networks)")
    return check_all_keys(cfg, stage)


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


def parse_args(argv, stage: str, description: str) -> Settings:
    """``--config FILE key=value ...`` -> the checked settings (raises ConfigError)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config (train/configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data=... output_dir=... max_steps=100")
    args = p.parse_args(argv)
    return validate_config(load_config(args.config, args.overrides, stage), stage)

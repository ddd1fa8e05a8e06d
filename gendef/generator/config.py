"""The GenDeF model config: a schema with a range for every key, checked before anything is built.

A ``config.json`` (or a YAML ``model:`` section) is plain data from outside; a typo or an absurd
value must be one clear line, never a 500 GB allocation or a silently ignored key. So:

1. :func:`validate_model_config` checks every key against :data:`MODEL_SCHEMA` (type, range,
   choices) and refuses unknown keys, listing the valid ones;
2. :func:`check_model_budget` estimates parameters (exactly, by building the model on PyTorch's
   ``meta`` device, which allocates nothing) and activations (one sample, one frame, from the
   StyleGAN channel schedule) and refuses configs over :data:`MAX_PARAMETERS` /
   :data:`MAX_ACTIVATION_BYTES` before a single weight is allocated.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import ModelConfigError

__all__ = [
    "MODEL_SCHEMA",
    "MAX_PARAMETERS",
    "MAX_ACTIVATION_BYTES",
    "validate_model_config",
    "estimate_model_size",
    "check_model_budget",
    "check_discriminator_config",
    "check_value",
    "Key",
]

# Stated limits (float32): weights of G alone at MAX_PARAMETERS are 1.2 GB; training keeps G, G_ema,
# D and two Adam moments, about 5x that.
MAX_PARAMETERS = 300_000_000
MAX_ACTIVATION_BYTES = 2 << 30  # forward activations of one sample, one frame (an estimate)
_ACTIVATION_FACTOR = 4  # modulated conv, noise, activation and skip tensors per conv output



@dataclass(frozen=True)
class Key:
    """One config key: ``kind`` is int | float | bool | choice | int_pair; ``None`` allowed if optional."""

    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    choices: tuple = ()
    pow2: bool = False
    optional: bool = False


_DIM = Key("int", 1, 4096)
_CBASE = Key("int", 1, 1 << 20)
_CMAX = Key("int", 1, 4096)
_LAYERS = Key("int", 1, 16)
_PERIOD = Key("float", 1e-3, 1e7)

MODEL_SCHEMA: Dict[str, Key] = {
    "resolution": Key("int", 8, 2048, pow2=True),
    "z_dim": _DIM,
    "w_dim": _DIM,
    "channel_base": _CBASE,
    "channel_max": _CMAX,
    "mapping_layers": _LAYERS,
    "canonical_feature_layer": Key("int", 1, 64, optional=True),
    "canonical_feature_dim": _DIM,
    "use_canonical_feature": Key("bool"),
    "deformation_channel_base": _CBASE,
    "deformation_channel_max": _CMAX,
    "deformation_mapping_layers": _LAYERS,
    "motion_noise_dim": _DIM,
    "motion_code_dim": _DIM,
    "motion_anchor_spacing": Key("float", 1e-3, 1e5),
    "time_num_freqs": Key("int", 1, 1024),  # official StyleGAN-V/GenDeF: 256
    "time_min_period": _PERIOD,
    "time_max_period": _PERIOD,
    "fps": Key("float", 1e-3, 1000),
    "canonical_backbone": Key("choice", choices=("stylegan2", "stylegan3")),
    "mtm": Key("bool"),
    "mtm_resolutions": Key("int_pair", 1, 2048, optional=True),
    # recipe switches (issue 11)
    "motion_mapping": Key("choice", choices=("mlp", "stylegan_v")),
    "motion_kernel_size": Key("int", 1, 63),
    "motion_input": Key("choice", choices=("style", "const")),
    "share_latent": Key("bool"),
    "deformation_init": Key("choice", choices=("zero", "xavier", "none")),
    # recipe switches (issue 22)
    "mtm_mask": Key("bool"),
    "mtm_placement": Key("choice", choices=("all", "official")),
    "deformation_mtm_resolutions": Key("int_pair", 1, 2048, optional=True),
    "canonical_feature_resize": Key("choice", choices=("pool", "bilinear")),
    "warp_padding": Key("choice", choices=("black", "grey")),
    "update_magnitude_ema": Key("bool"),
    "mixed_precision": Key("choice", choices=("none", "float16", "bfloat16")),
    "mixed_precision_res": Key("int", 0, 16),
}


DISCRIMINATOR_SCHEMA: Dict[str, Key] = {
    "resolution": Key("int", 8, 2048, pow2=True),
    "channel_base": _CBASE,
    "channel_max": _CMAX,
    "num_frames": Key("int", 1, 64),
    "merge_resolution": Key("int", 1, 2048, optional=True),
    "tsm": Key("bool"),
    "max_time_gap": Key("int", 1, 1 << 20),
    "time_embed_dim": _DIM,
    "time_mapping_layers": _LAYERS,
    "mbstd_group": Key("int", 1, 256),
}


def check_value(name: str, spec: Key, value: Any) -> Any:
    """One value against its Key (type, range, choices); returns it normalised or raises."""
    return _check_value(name, spec, value)


def _check_value(name: str, spec: Key, value: Any) -> Any:
    if value is None:
        if spec.optional:
            return None
        raise ModelConfigError(f"{name} must be set (got null)")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ModelConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if spec.kind == "choice":
        if value not in spec.choices:
            raise ModelConfigError(f"{name} must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
        return value
    if spec.kind == "int_pair":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ModelConfigError(f"{name} must be [min, max], got {value!r}")
        lo, hi = (_check_number(name, Key("int", spec.lo, spec.hi), v) for v in value)
        if lo > hi:
            raise ModelConfigError(f"{name} must satisfy 1 <= min <= max, got {value!r}")
        return [lo, hi]
    return _check_number(name, spec, value)


def _check_number(name: str, spec: Key, value: Any):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelConfigError(f"{name} must be a number, got {value!r}")
    if spec.kind == "int":
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise ModelConfigError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    elif not math.isfinite(value):
        raise ModelConfigError(f"{name} must be finite, got {value!r}")
    if not spec.lo <= value <= spec.hi:
        raise ModelConfigError(f"{name} must be in [{spec.lo:g}, {spec.hi:g}], got {value!r}")
    if spec.pow2 and value & (value - 1):
        raise ModelConfigError(f"{name} must be a power of two, got {value}")
    return value


def validate_model_config(config: Mapping[str, Any], valid_keys=None, schema=None, what: str = "model") -> Dict[str, Any]:
    """Every key checked against ``schema`` (default :data:`MODEL_SCHEMA`); returns the normalised dict.

    ``valid_keys`` (default: the schema's keys) are the keys the model accepts; anything else is
    refused with the list of valid ones (a typo such as ``resolutoin`` is never ignored).
    """
    schema = MODEL_SCHEMA if schema is None else schema
    if not isinstance(config, Mapping):
        raise ModelConfigError(f"{what} config must be a mapping of key: value, got {type(config).__name__}")
    valid = sorted(valid_keys if valid_keys is not None else schema)
    unknown = sorted(k for k in config if k not in valid)
    if unknown:
        raise ModelConfigError(f"unknown {what} config key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")
    out = {}
    for key, value in config.items():
        spec = schema.get(key)
        out[key] = value if spec is None else _check_value(key, spec, value)
    lo, hi = out.get("time_min_period"), out.get("time_max_period")
    if lo is not None and hi is not None and lo > hi:
        raise ModelConfigError(f"time_min_period ({lo:g}) must not exceed time_max_period ({hi:g})")
    return out


def _init_defaults(cls) -> Dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self" and p.default is not inspect.Parameter.empty}


def _activation_floats(res: int, cbase: int, cmax: int) -> int:
    """Conv outputs of one StyleGAN synthesis network (two convs per resolution 4..res)."""
    total, r = 0, 4
    while r <= res:
        total += 2 * max(1, min(cbase // r, cmax)) * r * r
        r *= 2
    return total


def estimate_model_size(cls, config: Mapping[str, Any]) -> Tuple[int, int]:
    """(parameters, activation bytes of one sample and frame) of ``cls(**config)``, allocating nothing.

    Parameters are exact (the model is built on the ``meta`` device); activations are estimated
    from the channel schedule of both generators.
    """
    import torch

    cfg = {**_init_defaults(cls), **config}
    with torch.device("meta"):
        model = cls(**config)
    params = sum(p.numel() for p in model.parameters())
    res = int(cfg["resolution"])
    floats = _activation_floats(res, int(cfg["channel_base"]), int(cfg["channel_max"]))
    floats += _activation_floats(res, int(cfg["deformation_channel_base"]), int(cfg["deformation_channel_max"]))
    return int(params), int(floats * _ACTIVATION_FACTOR * 4)


def building_on_meta() -> bool:
    """True inside ``with torch.device('meta')`` (the estimate's own build must not recurse)."""
    import torch

    return torch.empty(0).device.type == "meta"


def check_model_budget(cls, config: Mapping[str, Any], limits: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """Refuse a config whose model would exceed the stated limits; returns the estimate."""
    max_params, max_act = limits or (MAX_PARAMETERS, MAX_ACTIVATION_BYTES)
    params, act = estimate_model_size(cls, config)
    if params > max_params:
        raise ModelConfigError(
            f"model config gives {params / 1e6:,.0f}M parameters ({params * 4 / 2**30:.1f} GiB), "
            f"over the limit of {max_params / 1e6:,.0f}M; lower channel_base/channel_max, z_dim/w_dim or resolution"
        )
    if act > max_act:
        raise ModelConfigError(
            f"model config needs about {act / 2**30:.1f} GiB of activations per frame, over the limit of "
            f"{max_act / 2**30:.1f} GiB; lower resolution or channel_base/channel_max"
        )
    return params, act


def check_discriminator_config(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The discriminator's config (keys of its constructor, ranges of :data:`DISCRIMINATOR_SCHEMA`)
    and its parameter count (meta-device build), before anything is allocated."""
    import torch

    from .networks.discriminator import Discriminator

    cfg = validate_model_config(config, list(_init_defaults(Discriminator)), DISCRIMINATOR_SCHEMA, "disc")
    with torch.device("meta"):
        params = sum(p.numel() for p in Discriminator(**cfg).parameters())
    if params > MAX_PARAMETERS:
        raise ModelConfigError(
            f"disc config gives {params / 1e6:,.0f}M parameters, over the limit of {MAX_PARAMETERS / 1e6:,.0f}M; "
            "lower channel_base/channel_max"
        )
    return cfg

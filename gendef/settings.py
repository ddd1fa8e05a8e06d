"""One definition per setting: a dataclass field that carries its meaning, unit, default and rule.

A settings class is a frozen dataclass made with :func:`settings`; each field is made with
:func:`setting`. Everything else reads these fields, so nothing is written twice:

- the rule (:class:`Rule`: type, range, choices) is checked once, when the object is made
  (``__post_init__``), and the error names the flat key in one line;
- :func:`from_flat` builds an object (nested ones included) from the flat ``key: value`` dict of a
  ``config.json`` or a YAML section, refusing unknown keys with the list of valid ones;
  :func:`to_flat` writes it back; :func:`flat_fields` lists the keys, :func:`flat_defaults`
  their defaults and :func:`rules` their rules;
- :func:`describe` writes the ``Args:`` text of a docstring (``help()``) from the fields.

A field of a nested settings class has a flat key of its own (``key=``; default: its name), so a
flat dict stays the on-disk form while the code passes the typed objects around.
"""
from __future__ import annotations

import dataclasses
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Tuple, Type

from .errors import ModelConfigError

__all__ = ["Rule", "setting", "settings", "check_value", "check_fields", "from_flat", "check_flat", "to_flat",
           "flat_fields", "flat_defaults", "rules", "describe", "as_config"]


@dataclass(frozen=True)
class Rule:
    """What a value may be. ``kind``: int | float | bool | choice | int_pair | text | section | custom
    (``custom``: checked by the owning class, ``note`` says how); ``None`` is allowed if ``optional``."""

    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    choices: tuple = ()
    pow2: bool = False
    odd: bool = False
    optional: bool = False
    note: str = ""

    def words(self) -> str:
        """The rule in words, for the generated docs."""
        if self.kind in ("int", "float", "int_pair"):
            what = {"int": "an integer", "float": "a number", "int_pair": "[min, max], integers"}[self.kind]
            text = f"{what} in [{_num(self.lo)}, {_num(self.hi)}]" + (", a power of two" if self.pow2 else "")
            text += ", odd" if self.odd else ""
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "text":
            text = "a non-empty text (a path or name)"
        else:
            text = self.note
        return text + (", or null" if self.optional else "")


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and float(x).is_integer() else f"{x:g}"


def setting(default: Any, meaning: str, rule: Rule, unit: str = "", key: str = "") -> Any:
    """A dataclass field: ``meaning`` (one sentence), ``unit`` (if any), ``rule`` and the flat ``key``
    (empty: the field's name). A dict default is copied per object."""
    meta = {"meaning": meaning, "unit": unit, "rule": rule, "key": key}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings(cls: Type) -> Type:
    """Make ``cls`` a frozen settings dataclass whose docstring ends with its generated ``Args:``."""
    cls = dataclass(frozen=True)(cls)
    cls.__doc__ = (cls.__doc__ or cls.__name__).rstrip() + "\n\n    Args:\n" + describe(cls)
    return cls


def _is_settings(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _own_fields(cls) -> Iterator[dataclasses.Field]:
    return (f for f in dataclasses.fields(cls) if "rule" in f.metadata or _is_settings(f.default_factory))


def flat_fields(cls) -> Dict[str, Tuple[Tuple[str, ...], dataclasses.Field]]:
    """Flat key -> (attribute path, field), nested settings classes included, in definition order."""
    out: Dict[str, Tuple[Tuple[str, ...], dataclasses.Field]] = {}
    for f in _own_fields(cls):
        if "rule" in f.metadata:
            out[f.metadata["key"] or f.name] = ((f.name,), f)
        else:
            for key, (path, sub) in flat_fields(f.default_factory).items():
                out[key] = ((f.name, *path), sub)
    return out


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def flat_defaults(cls) -> Dict[str, Any]:
    return {key: _default(f) for key, (_, f) in flat_fields(cls).items()}


def rules(cls) -> Dict[str, Rule]:
    return {key: f.metadata["rule"] for key, (_, f) in flat_fields(cls).items()}


def check_value(name: str, rule: Rule, value: Any, error: Type[Exception] = ModelConfigError) -> Any:
    """One value against its rule; returns it normalised (whole floats -> int, pairs -> tuple) or raises."""
    if value is None:
        if rule.optional:
            return None
        raise error(f"{name} must be set (got null)")
    if rule.kind == "bool":
        if not isinstance(value, bool):
            raise error(f"{name} must be true or false, got {value!r}")
    elif rule.kind == "choice":
        if value not in rule.choices:
            raise error(f"{name} must be one of {', '.join(map(str, rule.choices))}, got {value!r}")
    elif rule.kind == "int_pair":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise error(f"{name} must be [min, max], got {value!r}")
        lo, hi = (_check_number(name, Rule("int", rule.lo, rule.hi), v, error) for v in value)
        if lo > hi:
            raise error(f"{name} must satisfy 1 <= min <= max, got {value!r}")
        return (lo, hi)
    elif rule.kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise error(f"{name} must be a non-empty text (a path or name), got {value!r}")
    elif rule.kind in ("int", "float"):
        return _check_number(name, rule, value, error)
    return value


def _check_number(name: str, rule: Rule, value: Any, error):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{name} must be a number, got {value!r}")
    if rule.kind == "int":
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise error(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    elif not math.isfinite(value):
        raise error(f"{name} must be finite, got {value!r}")
    if not rule.lo <= value <= rule.hi:
        raise error(f"{name} must be in [{rule.lo:g}, {rule.hi:g}], got {value!r}")
    if rule.pow2 and value & (value - 1):
        raise error(f"{name} must be a power of two, got {value}")
    if rule.odd and value % 2 == 0:
        raise error(f"{name} must be a positive odd integer, got {value!r}")
    return value


def check_fields(obj: Any, error: Type[Exception] = ModelConfigError) -> None:
    """Every own field of a (frozen) settings object against its rule, normalised in place."""
    for f in _own_fields(type(obj)):
        if "rule" in f.metadata:
            value = check_value(f.metadata["key"] or f.name, f.metadata["rule"], getattr(obj, f.name), error)
            object.__setattr__(obj, f.name, value)


def _known(cls, config: Mapping[str, Any], what: str, error) -> Dict[str, Tuple[Tuple[str, ...], dataclasses.Field]]:
    if not isinstance(config, Mapping):
        raise error(f"{what} config must be a mapping of key: value, got {type(config).__name__}")
    keys = flat_fields(cls)
    unknown = sorted(str(k) for k in config if k not in keys)
    if unknown:
        raise error(f"unknown {what} config key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(sorted(keys))}")
    return keys


def from_flat(cls, config: Mapping[str, Any], what: str, error: Type[Exception] = ModelConfigError):
    """``cls`` from a flat ``key: value`` mapping; keys it lacks take their defaults. Unknown keys are
    refused in one line that lists the valid ones (a typo is never ignored)."""
    keys = _known(cls, config, what, error)
    return _build(cls, {keys[k][0]: v for k, v in config.items()})


def check_flat(cls, config: Mapping[str, Any], what: str, error: Type[Exception] = ModelConfigError) -> Dict[str, Any]:
    """The keys of a flat mapping checked as :func:`from_flat` would (nested objects are made, so
    their own cross-field rules apply), without making ``cls`` itself; returns them normalised."""
    keys = _known(cls, config, what, error)
    nested = {}
    for f in _own_fields(cls):
        if "rule" not in f.metadata:
            sub = _build(f.default_factory, {keys[k][0][1:]: v for k, v in config.items() if keys[k][0][0] == f.name})
            nested.update(to_flat(sub))
    out = {}
    for k, v in config.items():
        path, f = keys[k]
        v = check_value(k, f.metadata["rule"], v, error) if len(path) == 1 else nested[k]
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def _build(cls, values: Dict[Tuple[str, ...], Any]):
    kwargs = {}
    for f in _own_fields(cls):
        if "rule" in f.metadata:
            if (f.name,) in values:
                kwargs[f.name] = values[(f.name,)]
        else:
            kwargs[f.name] = _build(f.default_factory, {p[1:]: v for p, v in values.items() if p[0] == f.name})
    return cls(**kwargs)


def to_flat(obj: Any) -> Dict[str, Any]:
    """The flat ``key: value`` dict (JSON-ready: pairs as lists) of a settings object."""
    out = {}
    for key, (path, _) in flat_fields(type(obj)).items():
        value = obj
        for name in path:
            value = getattr(value, name)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def describe(cls, indent: int = 8, width: int = 100) -> str:
    """The ``key: meaning, unit. Rule: ... Default: ...`` lines of every flat key (docstring Args)."""
    lines = []
    for key, (_, f) in flat_fields(cls).items():
        meta = f.metadata
        unit = f" Unit: {meta['unit']}." if meta["unit"] else ""
        text = f"{key}: {meta['meaning']}.{unit} Rule: {meta['rule'].words()}. Default: {_default(f)!r}."
        lines.append(textwrap.fill(text, width, initial_indent=" " * indent, subsequent_indent=" " * (indent + 4)))
    return "\n".join(lines) + "\n"


def as_config(cls, args: tuple, kwargs: dict):
    """A network's constructor argument: one ``cls`` object, or ``cls``'s fields given loose."""
    if len(args) == 1 and not kwargs and isinstance(args[0], cls):
        return args[0]
    return cls(*args, **kwargs)

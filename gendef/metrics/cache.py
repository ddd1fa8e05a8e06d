"""What evaluations may share: loaded detectors and real-data statistics, owned by the caller.

Nothing is cached per process. A caller that evaluates again and again (the trainer, every N
steps) keeps one :class:`MetricsCache` and passes it in, so only the generated side is paid for
after the first evaluation; without one, each call loads and computes what it needs and keeps
nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MetricsCache"]


@dataclass
class MetricsCache:
    """``detectors``: (kind, weights, size or spec, device) -> module; ``real_stats``: (metric, data,
    options ...) -> (mean, covariance) of the real set's features."""

    detectors: dict = field(default_factory=dict)
    real_stats: dict = field(default_factory=dict)

    def clear(self) -> None:
        self.detectors.clear()
        self.real_stats.clear()

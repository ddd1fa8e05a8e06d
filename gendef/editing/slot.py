"""One loaded model kept by its caller (the studio's services, a script), rebuilt only when its key changes.

The library keeps no loaded model of its own: a caller that wants one loaded once holds a Slot.
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable


class Slot:
    """Holds one value and the key it was built for; ``get`` builds it (once, under a lock) on a new key."""

    def __init__(self):
        self._lock = threading.Lock()
        self.key = None
        self.value = None

    def get(self, key: Hashable, build: Callable):
        with self._lock:
            if self.value is None or self.key != key:
                self.key = self.value = None  # the old model goes before the new one loads (GBs each)
                self.value = build()
                self.key = key
            return self.value

    def clear(self) -> None:
        with self._lock:
            self.key = self.value = None

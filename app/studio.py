"""The studio's tabs put together: the views each tab registers, what a loaded video resets, the event wiring.

A tab is a module with
- ``PANEL``: where ``app.ui`` places it ("source", "view", "edit" or "result");
- ``build(studio)``: makes its components, registers the ones callbacks fill
  (``studio.add``) and its events (``studio.on``);
- optionally ``ON_LOAD`` and ``reset(state) -> {view name: value}``: what its views show
  for a freshly loaded video (exactly the ``ON_LOAD`` names).
Callbacks return ``{view name: value}``; those that need the services or the other tabs take
``studio=None``: the binder passes the studio; a direct call (a script, a test) gets
:func:`default_studio`, every tab on a fresh Services (nothing is shared at module level).
"""
from __future__ import annotations

import functools
import inspect
from typing import Optional

from .services import Services

LOADED = "<the views a loaded video resets>"  # in outputs: every tab's ON_LOAD views


class Studio:
    def __init__(self, services: Services, tabs, checkpoint: str = ""):
        self.services = services
        self.tabs = tuple(tabs)
        self.checkpoint = checkpoint
        self.demo = None
        self.views: dict = {}
        self._events: list = []

    @property
    def load_views(self) -> tuple:
        """"state" and every tab's ON_LOAD views, in tab order."""
        names = ["state"]
        for tab in self.tabs:
            names += [n for n in getattr(tab, "ON_LOAD", ()) if n not in names]
        return tuple(names)

    def reset(self, state) -> dict:
        """What every tab shows for the freshly loaded video in ``state``."""
        views = {}
        for tab in self.tabs:
            if hasattr(tab, "reset"):
                shown = tab.reset(state)
                if set(shown) != set(tab.ON_LOAD):
                    raise RuntimeError(f"{tab.__name__}.reset returned {sorted(shown)}, its ON_LOAD is {sorted(tab.ON_LOAD)}")
                views.update(shown)
        return views

    # ----------------------------------------------------------------------------- layout
    def begin(self, demo, state) -> None:
        """The Blocks being built and its per-session gr.State (the "state" view)."""
        self.demo = demo
        self.add(state=state)

    def add(self, **components) -> None:
        """Register components under view names (unique in the studio)."""
        taken = sorted(set(components) & set(self.views))
        if taken:
            raise ValueError(f"view names already registered: {', '.join(taken)}")
        self.views.update(components)

    def build(self, panel: str) -> None:
        """Build, in order, the tabs that live in ``panel``."""
        for tab in self.tabs:
            if tab.PANEL == panel:
                tab.build(self)

    def on(self, event, fn, inputs, outputs, **kwargs) -> None:
        """Wire ``fn`` to ``event`` once every tab is built. ``inputs``: components or view names;
        ``outputs``: view names (``fn`` returns {name: value}; LOADED stands for load_views), or
        one view name as a string (``fn`` returns that view's value)."""
        self._events.append((event, fn, inputs, outputs, kwargs))

    def wire(self) -> None:
        """Bind every event registered by the tabs (all views exist now)."""
        for event, fn, inputs, outputs, kwargs in self._events:
            ins = [self.views[x] if isinstance(x, str) else x for x in inputs or []]
            if isinstance(outputs, str):
                event(self._plain(fn), ins or None, [self.views[outputs]], **kwargs)
                continue
            names = [n for x in outputs for n in (self.load_views if x == LOADED else (x,))]
            event(self._mapped(fn), ins or None, [self.views[n] for n in names], **kwargs)
        self._events = []

    def _plain(self, fn):
        call = self._call(fn)

        @functools.wraps(fn)
        def run(*args, **kw):
            return call(*args, **kw)

        return self._as_seen_by_gradio(run, fn)

    def _mapped(self, fn):
        call = self._call(fn)

        @functools.wraps(fn)
        def run(*args, **kw):
            return {self.views[name]: value for name, value in call(*args, **kw).items()}

        return self._as_seen_by_gradio(run, fn)

    def _call(self, fn):
        """``fn`` with this studio passed in, when it takes one."""
        if "studio" in inspect.signature(fn).parameters:
            return functools.partial(fn, studio=self)
        return fn

    @staticmethod
    def _as_seen_by_gradio(run, fn):
        """Gradio fills every parameter it sees; it must not see ``studio``, the binder passes it."""
        sig = inspect.signature(fn)
        run.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "studio"])
        return run


def default_studio(studio: Optional[Studio] = None) -> Studio:
    """``studio``, or, for a callback called directly, every tab on a fresh Services of its own."""
    if studio is not None:
        return studio
    from .ui import TABS

    return Studio(Services(), TABS)


def services_of(studio: Optional[Studio]) -> Services:
    """The studio's services, or, for a callback called directly, a fresh Services of its own."""
    return Services() if studio is None else studio.services

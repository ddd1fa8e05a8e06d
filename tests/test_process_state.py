"""The library sets no process-wide state: importing it changes nothing, and a call that needs a
thread count or a quiet decoder sets it for the call only and puts the caller's value back."""
import argparse
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gendef.cli import add_decompose_arguments, cmd_decompose
from gendef.decomposition import pipeline
from gendef.threads import opencv_threads, torch_threads
from gendef.video.decoder_logging import decoder_logging

ROOT = Path(__file__).resolve().parent.parent

_IMPORT_EVERYTHING = r"""
import json, logging, os, pkgutil, importlib, sys
import cv2, torch
import gendef

def state():
    levels = {n: l.level for n, l in logging.root.manager.loggerDict.items()
              if isinstance(l, logging.Logger) and (n.startswith("gendef") or n == "imageio_ffmpeg")}
    return {"environ": dict(os.environ), "torch_threads": torch.get_num_threads(), "cv2_threads": cv2.getNumThreads(),
            "cv2_log": cv2.utils.logging.getLogLevel(), "levels": {n: l for n, l in levels.items() if l}}

before = state()
names = sorted(m.name for m in pkgutil.walk_packages(gendef.__path__, "gendef.") if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": len(names), "before": before, "after": state()}))
"""


def test_importing_every_gendef_module_changes_no_process_setting():
    r = subprocess.run([sys.executable, "-c", _IMPORT_EVERYTHING], capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["modules"] > 60
    assert out["after"]["environ"] == out["before"]["environ"]
    assert out["after"] == out["before"]
    assert out["after"]["levels"] == {}


@pytest.fixture
def three_torch_threads():
    """The caller's own setting (3: neither the default nor what the library would pick), put back after."""
    old = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(old)


def _clip():
    x = np.linspace(0, 1, 24, dtype=np.float32)
    frame = np.stack([*np.meshgrid(x, x), np.outer(x, x)], -1)
    return np.stack([np.roll(frame, t, axis=1) for t in range(3)])


def _record_fit_threads(monkeypatch, fail=False):
    seen, fit = [], pipeline.fit_working_size

    def recording(*a, **kw):
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("the fit failed")
        return fit(*a, **kw)

    monkeypatch.setattr(pipeline, "fit_working_size", recording)
    return seen


def test_decompose_leaves_the_callers_threads_alone_or_restores_them(three_torch_threads, monkeypatch):
    seen = _record_fit_threads(monkeypatch)
    pipeline.decompose(_clip(), steps=1)  # threads=None: the caller's setting, untouched
    assert seen == [3] and torch.get_num_threads() == 3
    pipeline.decompose(_clip(), steps=1, threads=1)
    assert seen == [3, 1] and torch.get_num_threads() == 3
    seen = _record_fit_threads(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="the fit failed"):
        pipeline.decompose(_clip(), steps=1, threads=2)
    assert seen == [2] and torch.get_num_threads() == 3


def test_the_cli_passes_its_threads_through(tmp_path, monkeypatch):
    asked = []

    def fake_decompose_clip(path, **kw):
        asked.append(kw["threads"])
        raise RuntimeError("stop here")

    monkeypatch.setattr("gendef.decomposition.clip.decompose_clip", fake_decompose_clip)
    for extra in ([], ["--threads", "2"]):
        args = add_decompose_arguments(argparse.ArgumentParser()).parse_args(["in.mp4", "--out", str(tmp_path / "o.npz"), "--quiet", *extra])
        with pytest.raises(RuntimeError, match="stop here"):
            cmd_decompose(args)
    assert asked == [1, 2]  # 1 unless asked: the CLI's runs are as before


def test_thread_contexts_restore_and_refuse_nonsense(three_torch_threads):
    old_cv = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        with torch_threads(1), opencv_threads(1):
            assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (3, 3)
        with torch_threads(None), opencv_threads(None):
            assert (torch.get_num_threads(), cv2.getNumThreads()) == (3, 3)
        for bad in (0, -1, 1.5, "2", True):
            with pytest.raises(ValueError, match="threads must be"):
                with torch_threads(bad):
                    pass
        assert torch.get_num_threads() == 3
    finally:
        cv2.setNumThreads(old_cv)


def test_motion_flows_leave_opencv_threads_alone():
    from gendef.metrics.motion_stats import estimate_flows

    old = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        flows = estimate_flows((_clip() * 255).astype(np.uint8), size=24)
        assert flows.shape == (2, 24, 24, 2) and cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(old)


def _decoder_settings():
    return (os.environ.get("OPENCV_FFMPEG_LOGLEVEL"), cv2.utils.logging.getLogLevel(),
            logging.getLogger("imageio_ffmpeg").level)


QUIET = ("-8", cv2.utils.logging.LOG_LEVEL_SILENT, logging.ERROR)


def test_overlapping_decoder_scopes_are_restored_by_the_last_one_out(monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    before = _decoder_settings()
    assert before != QUIET
    first, second = decoder_logging(), decoder_logging()
    first.__enter__()
    assert _decoder_settings() == QUIET
    second.__enter__()
    first.__exit__(None, None, None)  # the other read is still going: still quiet
    assert _decoder_settings() == QUIET
    second.__exit__(None, None, None)
    assert _decoder_settings() == before
    with pytest.raises(KeyError):
        with decoder_logging(verbose=True):
            assert _decoder_settings() == ("24", cv2.utils.logging.LOG_LEVEL_WARNING, before[2])
            raise KeyError("a failed read")
    assert _decoder_settings() == before
    monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", "16")
    with decoder_logging():
        assert _decoder_settings()[0] == "16"  # the user's own choice is kept
    assert _decoder_settings()[0] == "16"


def test_reading_clips_from_four_threads_leaves_the_decoder_settings_as_they_were(tmp_path, monkeypatch):
    from gendef.video.io import write_video
    from gendef.video.reader import iter_frames, probe, read_video

    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    clip = (np.random.default_rng(0).random((6, 32, 48, 3)) * 255).astype(np.uint8)
    path = write_video(clip, tmp_path / "c.mp4", fps=10)
    before = _decoder_settings()
    got, errors = [], []

    def read():
        try:
            got.append((probe(path).frames, len(read_video(path)[0]), sum(1 for _ in iter_frames(path))))
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    workers = [threading.Thread(target=read) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and got == [(6, 6, 6)] * 4
    assert _decoder_settings() == before

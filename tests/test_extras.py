"""A missing optional part of the install (a pyproject extra) is one line that names the pip command."""
import subprocess
import sys
from pathlib import Path

import pytest

from gendef.errors import MissingExtra
from gendef.extras import EXTRAS, missing_message, missing_modules, require_extra

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_is_missing_in_the_test_install():
    for extra in ("train", "app"):
        assert missing_message(extra) is None
        require_extra(extra)


def test_a_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)
    assert missing_modules(["accelerate", "numpy"]) == ["accelerate"]
    with pytest.raises(MissingExtra) as e:
        require_extra("train")
    assert str(e.value) == 'the trainer needs accelerate, which is not installed: pip install ".[train]" (or pip install "gendef[train]")'
    assert set(EXTRAS) >= {"train", "app", "edit"}


def test_studio_without_gradio_exits_in_one_line():
    code = ("import sys, runpy; sys.modules['gradio'] = None; sys.argv = ['app.py']; "
            "runpy.run_path('app.py', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: the studio needs gradio") and 'pip install ".[app]"' in lines[0]


def test_editors_name_the_extra_and_keep_their_fallbacks(monkeypatch):
    from gendef.editing.segment import sam_status
    from gendef.editing.stylize import weights_status

    monkeypatch.setitem(sys.modules, "segment_anything", None)
    monkeypatch.setitem(sys.modules, "diffusers", None)
    ok, msg = sam_status()
    assert not ok and 'pip install ".[app]"' in msg and "GrabCut" in msg
    ok, msg = weights_status("canny")
    assert not ok and "diffusers" in msg and 'pip install ".[app]"' in msg and "Offline looks still work" in msg

"""The studio's upload cap, raised at launch for a studio run locally (issue 28: reopen a whole clip's
exported chain), and the .npz memory budget checked from the archive's headers before anything is allocated.

Files are built cheaply: a small real chain of segments padded past 50 MB with a stored member
np.load never reads, sparse files for the byte-exact boundary, and an archive of .npy headers
without their data for the budget."""
import io
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from app import sources, ui
from app.errors import StudioInputError
from app.services import Services
from app.state import StudioState
from app.studio import Studio
from app.uploads import DEFAULT_MAX_UPLOAD_MB, MAX_OPEN_NPZ_BYTES, MAX_UPLOAD_MB_CEILING, UPLOAD_ENV, Uploads
from gendef.video.canonical_video import CanonicalVideo
from gendef.video.grid import identity_grid
from gendef.video.npzfile import read_npz_headers
from gendef.video.segments import SegmentedVideo

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


def _studio(**limits) -> Studio:
    return Studio(Services(uploads=Uploads(**limits)), ui.TABS)


def _chain(folder: Path, pad_mb: float = 0.0) -> Path:
    """A real two-segment chain (20 frames of 32x48, a cut at 10) saved to .npz, then padded with a
    stored member of ``pad_mb`` MB of zeros (written in chunks; np.load never reads it)."""
    rng = np.random.default_rng(0)
    segs = [(s, CanonicalVideo(rng.random((40, 56, 3), dtype=np.float32), identity_grid(32, 48, 10, offset=(3.0, 4.0)), fps=10.0))
            for s in (0, 10)]
    path = SegmentedVideo(segs, fps=10.0, cuts=[10]).save(folder / "chain.npz")
    if pad_mb:
        chunk = bytes(4 * MB)
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_STORED) as zf, zf.open("padding.bin", "w", force_zip64=True) as fh:
            left = int(pad_mb * MB)
            while left > 0:
                fh.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return path


@pytest.fixture(scope="module")
def padded_chain(tmp_path_factory):
    path = _chain(tmp_path_factory.mktemp("upload"), pad_mb=52)
    assert 52 * MB < path.stat().st_size < 53 * MB
    return path


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


# ------------------------------------------------------------------------------ the cap
def test_the_default_cap_is_50_mb_for_gradio_and_for_the_studio_alike():
    from gradio.utils import _parse_file_size

    assert DEFAULT_MAX_UPLOAD_MB == sources.MAX_UPLOAD_MB == Services().uploads.max_mb == 50
    assert Uploads.at_launch(None, {}) == Uploads(50)
    assert _parse_file_size(ui.launch_kwargs()["max_file_size"]) == 50 * MB
    assert _parse_file_size(ui.launch_kwargs(Uploads(600))["max_file_size"]) == 600 * MB


def test_the_launch_option_and_the_environment_set_the_cap(monkeypatch):
    assert Uploads.at_launch("600", {}).max_mb == 600
    assert Uploads.at_launch(None, {UPLOAD_ENV: "120"}).max_mb == 120
    assert Uploads.at_launch(None, {UPLOAD_ENV: "  "}).max_mb == 50
    assert Uploads.at_launch("600", {UPLOAD_ENV: "120"}).max_mb == 600  # the option wins
    assert Uploads.at_launch(str(MAX_UPLOAD_MB_CEILING), {}).max_mb == 4096


@pytest.mark.parametrize("bad, message", [
    ("0", "between 1 and 4096, got 0"), ("-5", "between 1 and 4096, got -5"), ("5000", "between 1 and 4096, got 5000"),
    ("1e9", "between 1 and 4096, got 1000000000"), ("abc", "whole number between 1 and 4096"),
    ("1.5", "whole number between 1 and 4096"), ("inf", "whole number between 1 and 4096"),
])
def test_absurd_caps_are_refused_in_one_line(bad, message):
    with pytest.raises(StudioInputError, match=message) as e:
        Uploads.at_launch(bad, {})
    assert _one_line(e).startswith("--max-upload-mb must be")
    with pytest.raises(StudioInputError, match=message) as e:
        Uploads.at_launch(None, {UPLOAD_ENV: bad})
    assert _one_line(e).startswith(f"${UPLOAD_ENV} must be")
    with pytest.raises(ValueError):
        Uploads(0)


def test_app_py_refuses_an_absurd_cap_at_launch_in_one_line_and_keeps_its_defaults():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(UPLOAD_ENV, None)
    done = subprocess.run([sys.executable, "app.py", "--max-upload-mb", "5000", "--port", "7999"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "error: --max-upload-mb must be between 1 and 4096, got 5000."
    assert "Traceback" not in done.stderr and "Running on" not in done.stdout
    import importlib.util

    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    app_main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_main)
    assert app_main.parse_args([]).max_upload_mb is None  # python app.py: the cap from the environment, else 50
    assert app_main.parse_args(["--max-upload-mb", "600"]).max_upload_mb == "600"


def test_the_cap_is_byte_exact_as_gradio_counts_it(tmp_path):
    at, over = tmp_path / "at.mp4", tmp_path / "over.mp4"
    with open(at, "wb") as fh:  # sparse files: nothing is written
        fh.truncate(64 * MB)
    with open(over, "wb") as fh:
        fh.truncate(64 * MB + 1)
    assert Uploads(64).file(str(at)) == at
    with pytest.raises(StudioInputError, match=r"over.mp4 is 64.0 MB; the limit is 64 MB") as e:
        Uploads(64).file(str(over))
    assert "--max-upload-mb N" in _one_line(e)


def test_a_chain_over_50_mb_opens_under_a_raised_cap_and_is_refused_over_it(padded_chain):
    with pytest.raises(gr.Error, match=r"chain.npz is 52.\d MB; the limit is 50 MB"):
        sources.open_npz(StudioState(), str(padded_chain))  # the default studio, as on a Space
    with pytest.raises(gr.Error, match=r"the limit is 52 MB"):
        sources.open_npz(StudioState(), str(padded_chain), studio=_studio(max_mb=52))
    studio = _studio(max_mb=64)  # python app.py --max-upload-mb 64
    out = sources.open_npz(StudioState(), str(padded_chain), studio=studio)
    v = out["state"].video
    assert isinstance(v, SegmentedVideo) and v.num_segments == 2 and v.num_frames == 20 and v.cuts == frozenset({10})
    assert "Opened chain.npz" in out["state"].source


def test_the_upload_labels_name_the_studios_cap():
    cfg = ui.build_demo("x", Services(uploads=Uploads(600))).get_config_file()
    labels = {c["props"].get("elem_id"): c["props"].get("label") for c in cfg["components"]}
    assert labels["clip-file"] == "Video clip (≤ 600 MB)" and labels["npz-file"] == "CanonicalVideo (.npz, ≤ 600 MB)"


# ------------------------------------------------------------------------------ the .npz memory budget
def test_the_budget_counts_every_member_from_the_headers(tmp_path):
    path = _chain(tmp_path)
    members = read_npz_headers(path, max_members=16)
    total = Uploads().check_npz_memory("chain.npz", members.values())
    # two grids of 10x32x48x2 float32 and two 40x56x3 canonical images (float32), plus starts/cuts/fps/size/metadata
    assert 2 * (10 * 32 * 48 * 2 * 4 + 40 * 56 * 3 * 4) <= total < 2 * (10 * 32 * 48 * 2 * 4 + 40 * 56 * 3 * 4) + 64 * 1024
    assert Uploads(npz_budget=total).check_npz_memory("chain.npz", members.values()) == total
    with pytest.raises(StudioInputError, match=r"chain.npz declares 0.3 MB of arrays; the studio opens at most 0.3 MB") as e:
        Uploads(npz_budget=total - 1).check_npz_memory("chain.npz", members.values())
    _one_line(e)
    with pytest.raises(gr.Error, match=r"chain.npz declares 0.3 MB of arrays; the studio opens at most 0.1 MB"):
        sources.open_npz(StudioState(), str(path), studio=_studio(npz_budget=MB // 10))
    assert sources.open_npz(StudioState(), str(path), studio=_studio(npz_budget=total))["state"].video.num_segments == 2
    assert MAX_OPEN_NPZ_BYTES == 1536 * MB


def _npy_header_only(shape, dtype) -> bytes:
    """An .npy header declaring ``shape`` with none of its data (the zip entry declares only the header's bytes)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _declaring_chain(path: Path, segments: int) -> Path:
    """A 'chain' whose canonical images each declare 4096x4096x3 float32 (192 MiB, within the per-image limit)
    and whose grids are tiny: a few kB on disk that would make np.load allocate ``segments`` x 192 MiB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("starts.npy", _npy_header_only((segments,), "<i8") + np.arange(segments, dtype="<i8").tobytes())
        zf.writestr("fps.npy", _npy_header_only((), "<f8") + np.float64(10).tobytes())
        for i in range(segments):
            zf.writestr(f"seg{i}_canonical.npy", _npy_header_only((4096, 4096, 3), "<f4"))
            zf.writestr(f"seg{i}_grid.npy", _npy_header_only((1, 8, 8, 2), "<f4"))
    return path


def test_an_npz_declaring_more_than_the_budget_is_refused_before_anything_is_allocated(tmp_path, monkeypatch):
    path = _declaring_chain(tmp_path / "bomb.npz", segments=9)  # 9 x 192 MiB = 1728 MiB declared
    assert path.stat().st_size < 64 * 1024
    monkeypatch.setattr(sources, "load_video_npz", lambda p: pytest.fail("the arrays were loaded"))
    tracemalloc.start()
    try:
        with pytest.raises(gr.Error) as e:
            sources.open_npz(StudioState(), str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _one_line(e) and e.value.message == "bomb.npz declares 1728 MB of arrays; the studio opens at most 1536 MB."
    assert peak < 8 * MB  # numpy reports its allocations to tracemalloc: not one 192 MiB image was made

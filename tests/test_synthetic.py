"""The procedural sky time-lapses that train the shipped checkpoint."""
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from gendef.errors import DatasetError
from gendef.data.synthetic import (clip_seed, horizon_mask, main, render_clip,
                                   write_dataset)

ROOT = Path(__file__).resolve().parents[1]


def _png(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("res", [16, 48, 64])
def test_shape_dtype_and_range(res):
    clip = render_clip(1, num_frames=5, resolution=res)
    assert clip.shape == (5, res, res, 3)
    assert clip.dtype == np.uint8
    assert clip.std() > 5  # not a flat image


def test_deterministic_and_seed_dependent():
    a = render_clip(7, 8, 32)
    assert np.array_equal(a, render_clip(7, 8, 32))
    assert np.abs(a.astype(int) - render_clip(8, 8, 32)).mean() > 10


def test_time_is_absolute_so_short_clips_are_prefixes():
    assert np.array_equal(render_clip(3, 6, 32), render_clip(3, 12, 32)[:6])


def test_same_seed_same_sky_at_any_resolution():
    small = render_clip(2, 3, 32).astype(np.float32)
    big = render_clip(2, 3, 64)
    down = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in big]).astype(np.float32)
    other = render_clip(3, 3, 32).astype(np.float32)
    assert np.abs(small - down).mean() < 8
    assert np.abs(small - other).mean() > 20


@pytest.mark.parametrize("seed", range(6))
def test_motion_is_smooth_and_accumulates(seed):
    clip = render_clip(seed, 32, 64).astype(np.float32)
    step = np.abs(np.diff(clip, axis=0)).mean()
    drift8 = np.abs(clip[8:] - clip[:-8]).mean()
    first_last = np.abs(clip[-1] - clip[0]).mean()
    assert 0.2 < step < 10.0  # moves, but only a little per frame (0..255 scale)
    assert drift8 > 2.0 * step  # consecutive frames closer than frames 8 apart: coherent motion, not flicker
    assert first_last > 5.0


@pytest.mark.parametrize("seed", range(8))
def test_silhouettes_are_static_and_dark(seed):
    clip = render_clip(seed, 24, 64).astype(np.int16)
    mask = horizon_mask(seed, 64)
    assert 0.05 < mask.mean() < 0.6
    assert not mask[0].any() and mask[-1].all()  # sky at the top, ground along the bottom
    assert np.array_equal(clip[:, mask], np.broadcast_to(clip[0, mask], clip[:, mask].shape))
    sky = clip[:, ~mask]
    assert np.abs(sky - sky[0]).max() > 20  # the sky does change
    assert clip[:, mask].mean() < sky.mean()


def test_palettes_vary_across_seeds():
    means = np.array([render_clip(s, 1, 16)[0][~horizon_mask(s, 16)].mean(0) for s in range(40)])
    blue = means[:, 2] - means[:, 0]
    assert (blue > 60).sum() >= 5  # clear day skies
    assert (blue < 0).sum() >= 3  # warm sunsets
    assert (np.abs(blue) < 15).sum() >= 3  # grey overcast / storm
    assert means.mean(1).min() < 70 and means.mean(1).max() > 150  # dark dusk and bright day


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(DatasetError, match="seed"):
        render_clip(-1)
    with pytest.raises(DatasetError, match="frames"):
        render_clip(0, num_frames=0)
    with pytest.raises(DatasetError, match="resolution"):
        render_clip(0, resolution=4)


def test_write_dataset_folder_layout(tmp_path):
    out = write_dataset(tmp_path / "sky", videos=3, frames=4, resolution=16, seed=5, progress=False)
    videos = sorted(p.name for p in out.iterdir())
    assert videos == ["sky_000000", "sky_000001", "sky_000002"]
    frames = sorted(p.name for p in (out / "sky_000002").iterdir())
    assert frames == [f"frame_{t:06d}.png" for t in range(4)]
    expect = render_clip(clip_seed(5, 2), 4, 16)
    got = np.stack([_png((out / "sky_000002" / f).read_bytes()) for f in frames])
    assert np.array_equal(got, expect)
    assert not list(tmp_path.glob(".*partial"))


def test_write_dataset_zip_and_refuses_to_overwrite(tmp_path):
    dst = tmp_path / "sky.zip"
    write_dataset(dst, videos=2, frames=3, resolution=16, progress=False)
    with zipfile.ZipFile(dst) as zf:
        names = sorted(zf.namelist())
        assert names == [f"sky_00000{i}/frame_00000{t}.png" for i in range(2) for t in range(3)]
        assert np.array_equal(_png(zf.read("sky_000001/frame_000002.png")), render_clip(clip_seed(0, 1), 3, 16)[2])
    with pytest.raises(DatasetError, match="already exists"):
        write_dataset(dst, videos=1, frames=1, resolution=16, progress=False)


def test_cli_writes_layout_and_reports_errors(tmp_path, capsys):
    assert main([str(tmp_path / "ds"), "--videos", "2", "--frames", "3", "--resolution", "16", "--quiet"]) == 0
    assert len(list((tmp_path / "ds").glob("sky_*/frame_*.png"))) == 6
    assert main([str(tmp_path / "ds"), "--videos", "1", "--quiet"]) == 2
    assert main([str(tmp_path / "new"), "--videos", "0"]) == 2
    assert main([str(tmp_path / "new"), "--resolution", "5000"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "videos must be" in err and "resolution must be" in err
    assert "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_module_entry_point_with_progress_bar(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gendef.data.synthetic", str(tmp_path / "d"), "--videos", "2",
                        "--frames", "2", "--resolution", "8"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2/2" in r.stderr  # tqdm bar
    assert len(list((tmp_path / "d").glob("sky_*/frame_*.png"))) == 4


def test_parallel_workers_write_identical_bytes(tmp_path):
    one = write_dataset(tmp_path / "one.zip", videos=5, frames=3, resolution=16, seed=9, progress=False)
    two = write_dataset(tmp_path / "two.zip", videos=5, frames=3, resolution=16, seed=9, progress=False, workers=2)
    with zipfile.ZipFile(one) as a, zipfile.ZipFile(two) as b:
        assert a.namelist() == b.namelist() and len(a.namelist()) == 15
        assert all(a.read(n) == b.read(n) for n in a.namelist())
    with pytest.raises(DatasetError, match="workers"):
        write_dataset(tmp_path / "x", videos=1, frames=1, resolution=16, workers=0)

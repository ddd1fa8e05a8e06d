"""Fault injection (issue 15): hostile inputs, kills and damaged files.

Every test feeds one failure from the issue (a malformed file, an absurd size, a kill -9, a
damaged checkpoint) and asserts two things: nothing that existed before is lost, and the user
sees exactly one line. Memory claims run in a subprocess under ``resource.setrlimit`` so a
regression fails with MemoryError instead of exhausting the (shared) machine.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- helpers
def one_line(msg: str) -> str:
    """The message, asserted to be exactly one non-empty line."""
    lines = [ln for ln in str(msg).strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{msg}"
    return lines[0]


def write_npz_streamed(path, arrays: dict) -> Path:
    """An .npz whose members are streamed: ``{name: ndarray}`` or ``{name: (shape, dtype)}`` (zeros).

    Lets a test build a decompression bomb (GBs of zeros in a few MB) without allocating it.
    """
    chunk = 1 << 24
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, spec in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                if isinstance(spec, np.ndarray):
                    np.lib.format.write_array(fh, spec, allow_pickle=False)
                    continue
                shape, dtype = spec
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(fh, header)
                left = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                zeros = bytes(min(chunk, max(left, 0)))
                while left > 0:
                    fh.write(zeros[: min(chunk, left)])
                    left -= chunk
    return Path(path)


def run_limited(code: str, limit_mb: int, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose address space may grow by at most ``limit_mb`` MB
    above what it has after its imports (the ``# -- limit --`` marker line sets the limit).

    torch and cv2 reserve a lot of virtual address space at import, so the limit is set relative to
    the measured baseline (VmSize in /proc/self/status) rather than as an absolute number.
    """
    prologue = textwrap.dedent(
        f"""
        import resource
        def _vm_bytes():
            for ln in open('/proc/self/status'):
                if ln.startswith('VmSize:'):
                    return int(ln.split()[1]) * 1024
        def set_limit():
            base = _vm_bytes()
            lim = base + {int(limit_mb)} * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
            return base
        """
    )
    body = textwrap.dedent(code).replace("# -- limit --", "set_limit()")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", prologue + body], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def small_video():
    from gendef.video.canonical_video import CanonicalVideo
    from gendef.video.grid import identity_grid

    rng = np.random.default_rng(0)
    g = identity_grid(16, 16, 4)
    g[..., 0] += 0.3 * g[..., 1] + np.arange(4)[:, None, None]
    return CanonicalVideo(rng.random((24, 24, 3), dtype=np.float32), g, fps=8.0)


# =============================================================================
# 1. decompression bomb: headers and declared sizes checked before decompressing
# =============================================================================
@pytest.fixture(scope="module")
def npz_bomb(tmp_path_factory):
    """The issue's probe: a few-MB .npz holding a zero grid of 128x1024x1024x2 float32 (1 GiB)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    return write_npz_streamed(
        path,
        {
            "canonical": np.zeros((16, 16, 3), np.float32),
            "grid": ((128, 1024, 1024, 2), "<f4"),
            "fps": np.array(16.0),
            "metadata": np.array("{}"),
        },
    )


def test_npz_bomb_refused_under_memory_limit(npz_bomb):
    """CanonicalVideo.load of the bomb must refuse in one line with < 300 MB of extra address space
    (before the fix it allocated the whole 1 GiB grid and peaked at 1.36 GB RSS)."""
    assert npz_bomb.stat().st_size < 8 << 20
    res = run_limited(
        f"""
        from gendef.video.canonical_video import CanonicalVideo, CanonicalVideoError
        # -- limit --
        try:
            CanonicalVideo.load({str(npz_bomb)!r})
            print("LOADED")
        except CanonicalVideoError as e:
            print("REFUSED", e)
        """,
        limit_mb=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    line = one_line(res.stdout)
    assert line.startswith("REFUSED") and "limit" in line and "MemoryError" not in line, line


def test_npz_limits_each_member(tmp_path):
    from gendef.video import canonical_video as V

    cases = {
        "frames": {"grid": ((V.MAX_FILE_FRAMES + 1, 2, 2, 2), "<f4")},
        "canvas": {"canonical": ((4097, 4097, 3), "|u1")},
        "grid dtype": {"grid": ((2, 4, 4, 2), "<i8")},
        "grid shape": {"grid": ((2, 4, 4, 3), "<f4")},
        "metadata": {"metadata": ((V.MAX_METADATA_BYTES,), "<U8")},
    }
    for what, override in cases.items():
        members = {"canonical": ((8, 8, 3), "<f4"), "grid": ((2, 4, 4, 2), "<f4"), "fps": np.array(8.0)}
        members.update(override)
        path = write_npz_streamed(tmp_path / f"{what.replace(' ', '_')}.npz", members)
        with pytest.raises(V.CanonicalVideoError) as e:
            V.CanonicalVideo.load(path)
        msg = one_line(e.value)
        assert path.name in msg, (what, msg)


def test_npz_declared_size_must_match_header(tmp_path):
    """A zip entry declaring far more bytes than its .npy header describes is refused unread."""
    from gendef.video.canonical_video import CanonicalVideo
    from gendef.errors import CanonicalVideoError

    path = write_npz_streamed(
        tmp_path / "lie.npz", {"canonical": np.zeros((8, 8, 3), np.float32), "grid": ((2, 4, 4, 2), "<f4"), "fps": np.array(8.0)}
    )
    # re-pack the grid member with 64 MB of trailing zeros after its 128-byte array
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    parts["grid.npy"] += bytes(64 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, b in parts.items():
            zf.writestr(n, b)
    with pytest.raises(CanonicalVideoError) as e:
        CanonicalVideo.load(path)
    assert "declares" in one_line(e.value)


def test_npz_valid_roundtrip_still_loads(tmp_path, small_video):
    from gendef.video.canonical_video import CanonicalVideo, check_npz

    p = small_video.save(tmp_path / "ok.npz")
    members = check_npz(p)
    assert members["grid"].shape == (4, 16, 16, 2) and members["canonical"].shape == (24, 24, 3)
    back = CanonicalVideo.load(p)
    np.testing.assert_array_equal(back.grid, small_video.grid)
    with open(p, "rb") as fh:  # file objects are checked the same way
        np.testing.assert_array_equal(CanonicalVideo.load(fh).canonical, small_video.canonical)


# =============================================================================
# 3. video writes: atomic (temp + rename after the encoder's exit status), fps/path checked first
# =============================================================================
def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_video_write_killed_keeps_old_file(tmp_path, small_video):
    """kill -9 in the middle of an encode over an existing mp4 leaves the old mp4 byte-identical."""
    from gendef.video.io import write_video
    from gendef.video.reader import read_video

    out = tmp_path / "clip.mp4"
    write_video(small_video.frames(), out, fps=8)
    before = out.read_bytes()
    script = textwrap.dedent(
        f"""
        import numpy as np
        from gendef.video.io import write_video
        frames = np.random.default_rng(0).integers(0, 255, (400, 256, 256, 3), dtype=np.uint8)
        print("start", flush=True)
        write_video(frames, {str(out)!r}, fps=8)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == b"start"
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until the encoder has written something somewhere
            changed = any(p.name != out.name and p.stat().st_size > 0 for p in tmp_path.iterdir())
            if changed or out.read_bytes() != before or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the encode finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the writer and its ffmpeg child
        proc.wait()
    assert out.read_bytes() == before
    assert len(read_video(out)[0]) == small_video.num_frames


@pytest.mark.parametrize(
    "argv_tail",
    [["--fps", "-5"], ["--fps", "inf"], ["--fps", "nan"], ["--fps", "0"]],
)
@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_render_bad_fps_one_line_nothing_written(tmp_path, small_video, capsys, argv_tail, ext):
    from gendef.cli import main

    doc = small_video.save(tmp_path / "v.npz")
    out = tmp_path / f"out{ext}"
    rc = main(["render", str(doc), "--out", str(out), *argv_tail])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and "fps" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npz"]


def test_render_out_is_a_folder(tmp_path, small_video, capsys):
    from gendef.cli import main

    doc = small_video.save(tmp_path / "v.npz")
    (tmp_path / "taken.mp4").mkdir()
    rc = main(["render", str(doc), "--out", str(tmp_path / "taken.mp4")])
    assert rc == 2 and "folder" in one_line(capsys.readouterr().err)
    assert list((tmp_path / "taken.mp4").iterdir()) == []


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_failed_encode_keeps_old_file_and_removes_temp(tmp_path, small_video, monkeypatch, ext):
    """An encoder that fails (bad codec / PIL error) is reported and the old file stays as it was."""
    from gendef.video import io as videoio

    out = tmp_path / f"clip{ext}"
    videoio.write_video(small_video.frames(), out, fps=8)
    before = _snapshot(tmp_path)
    monkeypatch.setattr(videoio, "_H264", ["-c:v", "no-such-encoder"])
    monkeypatch.setattr(videoio, "_encode_gif", lambda *a: (_ for _ in ()).throw(videoio.VideoIOError("gif encoding failed (boom)")))
    with pytest.raises(videoio.VideoIOError) as e:
        videoio.write_video(small_video.frames(), out, fps=8)
    assert "fail" in one_line(e.value)
    assert _snapshot(tmp_path) == before


# =============================================================================
# 7. small ones
# =============================================================================
@pytest.mark.parametrize("pts", ["1e308,1e308", "1e300,-1e300", "-1e308,5", "1e15,1e15"])
def test_track_absurd_points_are_hidden_not_a_crash(tmp_path, capsys, pts):
    from gendef.cli import main
    from gendef.video.canonical_video import CanonicalVideo
    from gendef.video.grid import identity_grid

    # a fold-free but non-affine grid: the case where Newton steps overflowed to NaN indices
    rng = np.random.default_rng(1)
    g = identity_grid(32, 32, 3) * 1.5
    g += rng.normal(0, 0.8, g.shape).astype(np.float32)
    doc = CanonicalVideo(rng.random((48, 48, 3), dtype=np.float32), g).save(tmp_path / "v.npz")
    out = tmp_path / "t.json"
    assert main(["track", str(doc), f"--points={pts};10,10", "--json", str(out)]) == 0
    tracks = json.loads(out.read_text())["tracks"]
    assert not any(tracks[0]["visible"])
    assert all(np.isfinite(tracks[0]["x"])) and all(np.isfinite(tracks[0]["y"]))


def test_npz_tmp_removed_when_rename_fails(tmp_path, small_video, monkeypatch):
    from gendef.video import canonical_video as V

    path = small_video.save(tmp_path / "v.npz")
    before = _snapshot(tmp_path)

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(V.os, "replace", refuse)
    with pytest.raises(V.CanonicalVideoError) as e:
        small_video.with_canonical(np.zeros((24, 24, 3), np.float32)).save(path)
    assert "Permission denied" in one_line(e.value)
    assert _snapshot(tmp_path) == before  # no v.npz.tmp, old file intact


def test_prepare_unreadable_inputs_leave_nothing_and_rerun(tmp_path):
    from gendef.errors import DatasetError
    from gendef.data.prepare import prepare_dataset
    from gendef.video.io import write_video

    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.mp4").write_bytes(b"not a video at all")
    for dst in (tmp_path / "out.zip", tmp_path / "outdir"):
        with pytest.raises(DatasetError) as e:
            prepare_dataset(src, dst, resolution=8, progress=False)
        one_line(e.value)
        assert not dst.exists() and not dst.with_name(dst.name + ".partial").exists()
    # once a readable video is there, the same destinations work
    write_video(np.random.default_rng(0).random((4, 16, 16, 3)), src / "good.mp4", fps=8)
    for dst in (tmp_path / "out.zip", tmp_path / "outdir"):
        counts = prepare_dataset(src, dst, resolution=8, progress=False)
        assert counts == {"videos": 1, "frames": 4, "skipped": 1}


def test_cli_does_not_swallow_a_broken_module(monkeypatch):
    """A broken decomposition module must fail loudly, not silently vanish from the CLI."""
    import gendef
    from gendef import cli

    assert "decompose" in cli.build_parser().format_help()
    monkeypatch.setitem(sys.modules, "gendef.decomposition", None)  # import now raises ImportError
    monkeypatch.delattr(gendef, "decomposition", raising=False)
    with pytest.raises(ImportError):
        cli.build_parser()


# =============================================================================
# 2. model configs: schema with ranges, unknown keys refused, size estimated before building
# =============================================================================
ABSURD_MODEL_CONFIGS = {
    "time_num_freqs": {"time_num_freqs": 2e7},
    "channel_max": {"channel_max": 65536},
    "z_dim": {"z_dim": 1e9},
    "parameters": {"channel_base": 1 << 20, "channel_max": 4096},
    "activations": {"resolution": 2048, "channel_base": 1 << 20, "channel_max": 256},
    "resolutoin": {"resolutoin": 32},
}


def test_absurd_model_configs_refused_under_memory_limit(tmp_path, tiny_checkpoint):
    """Each absurd config.json is refused in one line naming the key, within 1 GB of extra address
    space (before the fix these allocated 24 GB+, 154 GB or 512 GB, or were silently ignored)."""
    base = json.loads((tiny_checkpoint / "config.json").read_text())
    folders = {}
    for name, override in ABSURD_MODEL_CONFIGS.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({**base, **override}))
        (folder / "model.safetensors").write_bytes((tiny_checkpoint / "model.safetensors").read_bytes())
        folders[name] = str(folder)
    res = run_limited(
        f"""
        import torch
        from gendef.generator.model import GenDeF
        torch.set_num_threads(1)
        # -- limit --
        for name, folder in {folders!r}.items():
            try:
                GenDeF.from_pretrained(folder)
                print(name, "BUILT")
            except Exception as e:
                print(name, type(e).__name__, "|", str(e).replace(chr(10), " NEWLINE "))
        """,
        limit_mb=1000,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    lines = dict(ln.split(" ", 1) for ln in res.stdout.strip().splitlines())
    assert sorted(lines) == sorted(ABSURD_MODEL_CONFIGS), res.stdout
    for name, line in lines.items():
        assert line.startswith("ModelConfigError |") and "NEWLINE" not in line, (name, line)
    assert "time_num_freqs must be in" in lines["time_num_freqs"]
    assert "channel_max must be in" in lines["channel_max"] and "z_dim must be in" in lines["z_dim"]
    assert "parameters" in lines["parameters"] and "activations" in lines["activations"]
    assert "'resolutoin'" in lines["resolutoin"] and "valid keys:" in lines["resolutoin"] and "resolution" in lines["resolutoin"]


def test_every_model_key_has_a_range():
    """The schema covers every constructor argument, so no key goes unchecked."""
    from gendef.generator.model import GenDeF
    from gendef.generator.config import MODEL_SCHEMA

    assert set(GenDeF.config_keys()) <= set(MODEL_SCHEMA)


@pytest.mark.parametrize(
    "override, words",
    [
        ({"resolution": 24}, "power of two"),
        ({"resolution": "64"}, "number"),
        ({"fps": float("inf")}, "finite"),
        ({"mtm": 1}, "true or false"),
        ({"canonical_backbone": "stylegan9"}, "one of"),
        ({"mtm_resolutions": [64, 8]}, "min <= max"),
        ({"time_min_period": 2048.0, "time_max_period": 16.0}, "must not exceed"),
    ],
)
def test_model_config_values_one_line(tiny_gendef_kwargs, override, words):
    from gendef.generator.model import GenDeF
    from gendef.errors import ModelConfigError

    with pytest.raises(ModelConfigError) as e:
        GenDeF(**{**tiny_gendef_kwargs, **override})
    assert words in one_line(e.value)


def test_weight_shape_mismatch_names_key_and_shapes(tmp_path, tiny_checkpoint, capsys):
    from gendef.cli import main

    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    (tiny_checkpoint / "config.json").write_text(json.dumps({**cfg, "channel_max": 16}))
    rc = main(["sample", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "s.npz"), "--frames", "2"])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and "weight canonical." in err and ", 32, " in err and ", 16, " in err, err
    assert not (tmp_path / "s.npz").exists()


# =============================================================================
# 6. data faults: skips counted across loader workers; an all-corrupt dataset stops at start
# =============================================================================
def _frame_folders(root: Path, good: int, bad: int, frames: int = 4, size: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for v in range(good + bad):
        d = root / f"{'bad' if v >= good else 'good'}{v}"
        d.mkdir(parents=True)
        for f in range(frames):
            if v >= good:
                (d / f"{f:06d}.png").write_bytes(b"\x89PNG garbage")
            else:
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{f:06d}.png")
    return root


def test_skips_in_loader_workers_reach_the_counter(tmp_path):
    import torch

    from gendef.data import FrameDataset

    ds = FrameDataset(_frame_folders(tmp_path / "data", good=1, bad=1), resolution=8)
    assert len(ds) == 8 and ds.num_skipped == 0
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, shuffle=False)
    n = sum(len(b) for b in loader)
    # each of the 4 corrupt frames fails once, then its retry reads the good video
    assert n == 8 and ds.num_skipped_at_runtime == 4 and ds.num_skipped == 4


def test_all_corrupt_dataset_stops_at_start_in_one_line(tmp_path):
    from gendef.data import ClipDataset, FrameDataset
    from gendef.errors import DatasetError

    root = _frame_folders(tmp_path / "data", good=0, bad=3)
    for cls in (FrameDataset, ClipDataset):
        with pytest.raises(DatasetError) as e:
            cls(root, resolution=8)
        assert "could be decoded" in one_line(e.value)


# =============================================================================
# 4/5/6. training: checkpoints that always resume, config checked in full, data faults survived
# =============================================================================
TINY_YAML = str(ROOT / "train" / "configs" / "tiny.yaml")
QUIET = ["progress=false", "sample_every=0", "log_every=1"]


@pytest.fixture(scope="module")
def frames_data(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("fault_data") / "frames"
    rng = np.random.default_rng(0)
    for v in range(3):
        base = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
        (root / f"v{v}").mkdir(parents=True)
        for t in range(10):
            Image.fromarray(np.roll(base, t, axis=1)).save(root / f"v{v}" / f"{t:04d}.png")
    return root


@pytest.fixture(scope="module")
def run4(frames_data, tmp_path_factory):
    """A tiny stage-1 run with checkpoints at steps 2 and 4."""
    from train import pretrain

    out = tmp_path_factory.mktemp("fault_runs") / "run4"
    rc = pretrain.main(["--config", TINY_YAML, f"data={frames_data}", f"output_dir={out}", "max_steps=4", "ckpt_every=2", *QUIET])
    assert rc == 0
    return out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CHECKPOINT_DAMAGE = {
    "G truncated": lambda ck: _truncate(ck / "G.safetensors"),
    "G_ema truncated": lambda ck: _truncate(ck / "G_ema.safetensors"),
    "train_state empty": lambda ck: (ck / "train_state.json").write_text(""),
    "rng truncated": lambda ck: _truncate(ck / "random_states_0.pkl"),
    "optimizer truncated": lambda ck: _truncate(ck / "optimizer.bin"),
    "optimizer missing": lambda ck: (ck / "optimizer.bin").unlink(),
}


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src / "checkpoints", dst / "checkpoints")
    return dst


@pytest.mark.parametrize("damage", list(CHECKPOINT_DAMAGE))
def test_damaged_newest_checkpoint_reported_and_previous_used(run4, tmp_path, damage):
    from train.checkpoint import Checkpointer

    out = _copy_run(run4, tmp_path / "run")
    CHECKPOINT_DAMAGE[damage](out / "checkpoints" / "step-00000004")
    lines = []
    assert Checkpointer(out).resolve("latest", report=lines.append).name == "step-00000002"
    assert "step-00000004" in one_line("\n".join(lines)) and "damaged" in lines[0]


def test_resume_after_damage_recomputes_identical_weights(run4, frames_data, tmp_path, capfd):
    """Resume falls back to step 2, retrains steps 3-4, and gets the undamaged run's step-4 weights."""
    from safetensors.torch import load_file

    from train import pretrain

    out = _copy_run(run4, tmp_path / "run")
    ck4 = out / "checkpoints" / "step-00000004"
    want = {k: v.clone() for k, v in load_file(str(ck4 / "G.safetensors")).items()}  # load_file maps the file
    _truncate(ck4 / "G.safetensors")
    capfd.readouterr()
    rc = pretrain.main(["--config", TINY_YAML, f"data={frames_data}", f"output_dir={out}", "max_steps=4", "ckpt_every=2",
                        "resume=latest", *QUIET])
    cap = capfd.readouterr()
    assert rc == 0 and "Traceback" not in cap.err
    assert "step-00000004" in one_line("\n".join(ln for ln in cap.err.splitlines() if "damaged" in ln))
    assert "resumed from" in cap.out and "step-00000002" in cap.out
    got = load_file(str(ck4 / "G.safetensors"))
    bad = [k for k in want if not torch_equal(want[k], got[k])]
    assert not bad, (bad[:5], len(bad), len(want), [float((want[k] - got[k]).abs().max()) for k in bad[:3]])


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.parametrize("fault", ["truncated", "missing"])
def test_rng_state_that_cannot_be_restored_is_an_error(run4, frames_data, tmp_path, capsys, fault):
    """Without a manifest to catch it (a checkpoint from before manifests), a bad RNG file must stop
    the resume with one line instead of silently training on different random streams."""
    from train import pretrain

    out = _copy_run(run4, tmp_path / "run")
    ck4 = out / "checkpoints" / "step-00000004"
    (ck4 / "manifest.json").unlink(missing_ok=True)
    rng = ck4 / "random_states_0.pkl"
    _truncate(rng) if fault == "truncated" else rng.unlink()
    capsys.readouterr()
    rc = pretrain.main(["--config", TINY_YAML, f"data={frames_data}", f"output_dir={out}", "max_steps=6", "resume=latest", *QUIET])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and "RNG state" in err
    assert not (out / "checkpoints" / "step-00000006").exists()


BAD_TRAIN_OVERRIDES = [
    "model.resolution=abc", "betas=0.5", "max_kimg=abc", "mixed_precision=fp99", "sample_count=abc",
    "sample_every=abc", "eval_every=abc", "model.resolutoin=16", "disc.channel_max=65536", "disc.foo=1",
    "eval.bogus=1", "model.time_num_freqs=20000000", "max_dist=2", "hflip=maybe", "keep_checkpoints=0",
]


@pytest.mark.parametrize("override", BAD_TRAIN_OVERRIDES)
def test_bad_training_config_fails_at_start_leaving_no_folder(frames_data, tmp_path, capsys, override):
    from train import pretrain

    out = tmp_path / "run"
    rc = pretrain.main(["--config", TINY_YAML, f"data={frames_data}", f"output_dir={out}", "max_steps=12", *QUIET, override])
    err = one_line(capsys.readouterr().err)
    assert rc == 2 and err.startswith("error: "), err
    assert not out.exists()


def test_all_corrupt_training_data_stops_at_start(tmp_path, capsys):
    from train import pretrain

    data = _frame_folders(tmp_path / "data", good=0, bad=2)
    rc = pretrain.main(["--config", TINY_YAML, f"data={data}", f"output_dir={tmp_path / 'run'}", "max_steps=4", *QUIET])
    assert rc == 2 and "could be decoded" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("workers", [0, 1])
def test_data_gone_mid_run_stops_with_a_checkpoint(frames_data, tmp_path, capfd, monkeypatch, workers):
    """Every read fails from the 3rd batch on: one line, and steps 1-2 are kept in a checkpoint."""
    from gendef.data import FrameDataset
    from gendef.errors import VideoIOError
    from train import pretrain

    real = FrameDataset._read_frame
    calls = {"n": 0}

    def flaky(self, v, idx):
        calls["n"] += 1
        if calls["n"] > 1 + 4 * 2:  # the start-up probe (1 frame), then 2 batches of 4
            raise VideoIOError(f"{v.name}/{idx}: disk gone")
        return real(self, v, idx)

    monkeypatch.setattr(FrameDataset, "_read_frame", flaky)
    out = tmp_path / "run"
    capfd.readouterr()
    rc = pretrain.main(["--config", TINY_YAML, f"data={frames_data}", f"output_dir={out}", "max_steps=8", "ckpt_every=100",
                        f"num_workers={workers}", *QUIET])
    err = one_line("\n".join(ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("error")))
    assert rc == 2 and "reads in a row failed" in err and "step-00000002" in err, err
    from train.checkpoint import Checkpointer

    latest = Checkpointer(out).latest()
    assert latest is not None and json.loads((latest / "train_state.json").read_text())["step"] >= 1


# =============================================================================
# studio: checkpoint box when served, .npz header check, session folders
# =============================================================================
@pytest.fixture
def public_studio(monkeypatch):
    pytest.importorskip("gradio")
    from app import checkpoints

    monkeypatch.setenv("SPACE_ID", "someone/gendef-studio")
    yield checkpoints


def test_served_studio_checkpoint_box_one_message_for_every_refusal(public_studio, tiny_checkpoint, tmp_path):
    """On a Space (or --host beyond loopback) arbitrary local paths are refused, and every refusal
    reads the same whether the path exists, is a checkpoint, or is nothing at all."""
    from app.services import Services

    checkpoints = public_studio
    refused = [
        str(tiny_checkpoint),  # a valid checkpoint, but an arbitrary local path
        "/etc",
        str(tmp_path / "no-such-folder"),
        "../checkpoints/default",
        "checkpoints/../checkpoints/default",
        "checkpoints/no-such-model",
        "tests",  # exists next to app.py
        "gendef/video",  # looks like a Hub id but is a local folder
        "nobody/no-such-repo",  # a Hub id that cannot be fetched (offline)
    ]
    messages = set()
    for name in refused:
        with pytest.raises(checkpoints.ModelUnavailable) as e:
            Services().model(name)
        messages.add(one_line(e.value))
    assert messages == {checkpoints.REFUSED}


def test_served_studio_still_loads_the_default_and_checkpoints_folder(public_studio, monkeypatch, tiny_checkpoint):
    from app.services import Services

    checkpoints = public_studio
    monkeypatch.setattr(checkpoints, "REPO_ROOT", tiny_checkpoint.parent)  # checkpoints/ = <tmp>/checkpoints
    (tiny_checkpoint.parent / "checkpoints").mkdir()
    tiny_checkpoint.rename(tiny_checkpoint.parent / "checkpoints" / "tiny")
    assert Services().model("tiny").model.resolution == 16
    assert Services().model("checkpoints/tiny").model.resolution == 16


def test_local_studio_loads_any_folder(monkeypatch, tiny_checkpoint):
    pytest.importorskip("gradio")
    from app import checkpoints
    from app.services import Services

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert Services(served=checkpoints.is_served("127.0.0.1")).model(str(tiny_checkpoint)).model.resolution == 16
    with pytest.raises(checkpoints.ModelUnavailable, match="Checkpoint not available"):
        Services(served=checkpoints.is_served("0.0.0.0")).model(str(tiny_checkpoint))


def test_studio_open_npz_checks_header_before_loading(tmp_path):
    """A 512 MiB grid is within the library's limit but over the studio's: refused from the header,
    within 300 MB of extra address space (before: loaded, then copied and rendered)."""
    pytest.importorskip("gradio")
    path = write_npz_streamed(
        tmp_path / "big.npz",
        {"canonical": np.zeros((64, 64, 3), np.float32), "grid": ((256, 512, 512, 2), "<f4"), "fps": np.array(8.0)},
    )
    res = run_limited(
        f"""
        import gradio as gr
        from app.sources import open_npz
        # -- limit --
        try:
            open_npz(None, {str(path)!r})
            print("OPENED")
        except gr.Error as e:
            print("REFUSED", e.message if hasattr(e, "message") else e)
        """,
        limit_mb=300,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    line = one_line(res.stdout)
    assert line.startswith("REFUSED") and "the studio opens at most" in line, line


@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_session_folders_removed_when_the_server_ends(how):
    pytest.importorskip("gradio")
    script = textwrap.dedent(
        f"""
        import sys, time
        from app.state import StudioState, install_exit_cleanup
        install_exit_cleanup()
        s = StudioState()
        s.new_path("video.mp4").write_bytes(b"frames")
        print(s.workdir, flush=True)
        if {how!r} == "sigterm":
            time.sleep(60)
        sys.stdin.readline()  # "exit": a normal end once the parent has looked
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    workdir = Path(proc.stdout.readline().strip())
    assert workdir.is_dir() and any(workdir.iterdir())
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    proc.communicate("go\n", timeout=60)
    assert not workdir.exists()


def test_all_checkpoints_damaged_is_an_error_not_a_fresh_start(run4, frames_data, tmp_path, capsys):
    """Starting from scratch would prune (delete) the damaged checkpoints: stop and say so instead."""
    from train import pretrain

    out = _copy_run(run4, tmp_path / "run")
    for ck in (out / "checkpoints").glob("step-*"):
        (ck / "train_state.json").write_text("")
    rc = pretrain.main(["--config", TINY_YAML, f"data={frames_data}", f"output_dir={out}", "max_steps=6", "resume=latest", *QUIET])
    err = capsys.readouterr().err
    assert rc == 2 and "no intact checkpoint" in one_line("\n".join(ln for ln in err.splitlines() if ln.startswith("error")))
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-00000002", "step-00000004"]


def test_every_training_key_has_a_rule():
    """New config keys must get a rule in train/config_schema.py (None = checked in validate_config)."""
    from train.config import DEFAULTS
    from train.config_schema import TRAIN_SCHEMA

    assert set(DEFAULTS) == set(TRAIN_SCHEMA)

"""The 128-px sky config and the sitting tool, train/sitting.py (run here in its CPU smoke mode)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "train" / "configs" / "sky128.yaml"


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_sky128_config_validates_and_fits_the_size_limits(stage):
    from gendef import GenDeF
    from gendef.generator.networks.discriminator import Discriminator
    from train.config import load_config, validate_config

    cfg = load_config(str(CONFIG), ["data=d", "output_dir=o", "init=i"], stage)
    validate_config(cfg, stage)
    assert cfg["model"]["resolution"] == 128 and cfg["model"]["canonical_backbone"] == "stylegan2"
    if stage == "finetune":
        return
    G, D = GenDeF(**cfg["model"]), Discriminator(resolution=128, **cfg["disc"])
    for net in (G, D):  # fp32 safetensors: <= 16 MiB comes back from a GPU sitting, <= 25 MB ships
        assert sum(p.numel() for p in net.parameters()) * 4 < 15.5 * 2**20


def test_sitting_smoke_writes_pack_log_strip_and_resumes(tmp_path):
    out, out2 = tmp_path / "out", tmp_path / "out2"
    code = ("import sys; import train.sitting as s; "
            f"rc = s.main(['--smoke', '--device', 'cpu', '--out', {str(out)!r}, '--work', {str(tmp_path / 'work')!r}]); "
            "print('HEAVY', [m for m in ('gradio', 'imageio_ffmpeg') if m in sys.modules]); sys.exit(rc)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "HEAVY []" in r.stdout  # neither gradio nor imageio-ffmpeg is imported on the GPU machine
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert len(files) == 8 and "pack/G.safetensors" in files and "log.csv" in files and "samples.png" in files
    meta = json.loads((out / "sitting.json").read_text())
    assert [meta["stages"][s]["steps"] for s in ("stage1", "stage2")] == [2, 2] and meta["cpu"] and meta["torch"]
    assert all(r["rc"] == 0 for r in meta["stages"].values()) and not meta["files_over_16MiB"]
    header, *rows = (out / "log.csv").read_text().splitlines()
    assert "loss/G" in header and "loss/D" in header and [r.split(",")[0] for r in rows] == ["pretrain"] * 2 + ["finetune"] * 2
    assert "field/mean_px" in header and "field/hf_px" in header and "field/coverage" in header  # the monitor
    assert meta["health"]["step"] == 2 and "mean_pct" in meta["health"]["last"]
    import cv2

    strip = cv2.imread(str(out / "samples.png"))
    assert strip.shape == (4 * 16, 9 * 16, 3) and strip.std() > 0  # 4 samples: canonical | 8 frames
    png = tmp_path / "losses.png"
    r = subprocess.run([sys.executable, "benchmarks/plot_losses.py", str(out), "--out", str(png)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(png)).shape == (220, 840, 3)  # one panel per stage
    # the next sitting continues the stage-2 pack (2 more steps), in a fresh work folder
    r = subprocess.run([sys.executable, "train/sitting.py", "--smoke", "--device", "cpu", "--out", str(out2),
                        "--work", str(tmp_path / "work2"), "--resume-pack", str(out / "pack"), "max_steps=4"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    meta2 = json.loads((out2 / "sitting.json").read_text())
    assert meta2["pack_stage"] == "finetune" and list(meta2["stages"]) == ["stage2"]
    assert meta2["stages"]["stage2"]["steps"] == 2 and meta2["stages"]["stage2"]["kimg_total"] == 2 * meta["stages"]["stage2"]["kimg_total"]
    r = subprocess.run([sys.executable, "train/sitting.py", "--resume-pack", str(out2 / "pack"), "--export", str(tmp_path / "m")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    from gendef import GenDeF

    assert GenDeF.from_pretrained(tmp_path / "m").resolution == 16  # the smoke run's tiny config
    (out / "pack" / "state.json").write_text("{")
    r = subprocess.run([sys.executable, "train/sitting.py", "--smoke", "--device", "cpu", "--out", str(tmp_path / "o3"),
                        "--resume-pack", str(out / "pack")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "damaged" in r.stderr


def test_quality_table_for_a_model_and_the_data(tiny_checkpoint, tmp_path):
    from benchmarks import quality  # the repository root is on the path under pytest
    out = tmp_path / "q.md"
    quality.main(["--old", str(tiny_checkpoint), "--num", "8", "--motion-videos", "1", "--motion-frames", "4",
                  "--data-resolution", "32", "--out", str(out)])
    lines = [ln for ln in out.read_text().splitlines() if ln.startswith("| ")]
    assert len(lines) == 3 and lines[1].startswith("| data (32 px) | 32 |") and lines[2].startswith("| old model")
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert rows[0]["swd_own"] > 0 and 0 <= rows[0]["drift"] <= 1 and rows[1]["resolution"] == 16
    assert "from its exact sampling grids" in out.read_text() and rows[1]["grid_speed"] > 0


def test_a_stage1_only_sitting_stops_after_stage_1_and_counts_its_cpu_time(tmp_path):
    """--stage1-only: long stage 1s in sittings that add up; sitting.json's cpu_seconds feeds the card's CPU hours."""
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "train/sitting.py", "--smoke", "--device", "cpu", "--stage1-only", "--out", str(out),
                        "--work", str(tmp_path / "work")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((out / "sitting.json").read_text())
    assert list(meta["stages"]) == ["stage1"] and meta["stages"]["stage1"]["steps"] == 2
    assert json.loads((out / "pack" / "state.json").read_text())["stage"] == "pretrain"  # the next sitting continues stage 1
    assert 0 < meta["cpu_seconds"] < meta["total_seconds"] * (os.cpu_count() or 1) + 5

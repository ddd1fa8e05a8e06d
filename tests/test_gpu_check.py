"""benchmarks/gpu_check.py --quick --device cpu: both stages, fp32 and bf16, ADA forced on, one table."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import runpy, sys
sys.argv = ["gpu_check", "--quick", "--device", "cpu", "--json", sys.argv[1]]
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit as e:
    code = e.code
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("gradio", "imageio_ffmpeg"))
print("IMPORTED", bad)
sys.exit(code)
"""


def test_gpu_check_quick_on_cpu(tmp_path):
    out = tmp_path / "rows.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    code = SCRIPT.format(script=str(ROOT / "benchmarks" / "gpu_check.py"))
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "IMPORTED []" in r.stdout  # the GPU machine has neither gradio nor imageio-ffmpeg
    table = [line for line in r.stdout.splitlines() if line.startswith("| ") and "yes" in line]
    assert len(table) == 4 and "s/kimg" in r.stdout and "peak GPU memory" in r.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [(x["stage"], x["precision"]) for x in rows] == [(1, "fp32"), (2, "fp32"), (1, "bf16"), (2, "bf16")]
    assert all(x["finite"] and x["steps"] == 2 and x["s_per_kimg"] > 0 and x["losses"]["loss/D"] > 0 for x in rows)
    for x in rows:  # stage 2 counts kimg in frames (3 per clip), like the official code
        assert x["s_per_kitems"] == pytest.approx(x["s_per_kimg"] * (3 if x["stage"] == 2 else 1))
    assert all(x["losses"]["loss/r1"] > 0 for x in rows)  # --quick: R1 through the augmentation every step

"""benchmarks/gpu_ladder.py --quick --device cpu: every rung runs, the table, the JSON and the chosen switches."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_ladder_quick_on_cpu(tmp_path):
    out = tmp_path / "ladder.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_ladder.py"), "--quick", "--device", "cpu",
                        "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    rungs = [(x["stage"], x["rung"]) for x in res["rows"]]
    speed = ["sync_every=25", "adam=fused", "channels_last", "bf16"]
    assert rungs == [(1, "baseline"), (1, "data_on_device"), *[(1, s) for s in speed],
                     (2, "baseline"), (2, "checkpoint_deformation"), *[(2, s) for s in speed]]
    assert all(x["finite"] and x["steps"] == 3 and x["s_per_kimg"] > 0 for x in res["rows"])
    assert all(x["losses"]["loss/D"] > 0 for x in res["rows"])
    assert res["rows"][0]["kept"] is True and res["date"] and res["torch"]
    for stage in (1, 2):  # the chosen switches are exactly the kept rungs' switches, and the best kept row
        chosen = res["chosen"][f"tiny stage {stage}"]
        kept = [x for x in res["rows"] if x["stage"] == stage and x["kept"]]
        assert chosen["row"]["s_per_kimg"] == kept[-1]["s_per_kimg"]
        assert len(chosen["switches"]) == len(kept) - 1
        assert f"chosen for tiny stage {stage}:" in r.stdout
    assert r.stdout.count("| tiny |") == len(rungs) and "peak allocated / reserved GiB" in r.stdout

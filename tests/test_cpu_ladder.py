"""benchmarks/cpu_ladder.py --quick: every CPU rung runs, both clocks, the R1 split, the choice and the JSON."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_ladder_quick(tmp_path):
    out = tmp_path / "ladder.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "benchmarks.cpu_ladder", "--quick", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    rungs = [(x["stage"], x["rung"]) for x in res["rows"]]
    common = ["sync_every=25", "adam=foreach", "channels_last"]
    assert rungs == [(1, "baseline"), (1, "threads=1"), (1, "data_on_device"), *[(1, s) for s in common],
                     (2, "baseline"), (2, "threads=1"), *[(2, s) for s in common]]
    for x in res["rows"]:
        assert x["finite"] and x["steps"] == 3 and x["losses"]["loss/D"] > 0
        # the 2-step window holds one R1 step (r1_interval = window) and one plain step, on both clocks
        assert x["wall"]["plain_s"] > 0 and x["wall"]["r1_s"] > 0 and x["cpu"]["s_per_kimg"] > 0
        assert x["s_per_kimg"] == x["wall"]["s_per_kimg"]
    assert [x["threads"] for x in res["rows"] if x["rung"] == "threads=1"] == [1, 1]
    for stage in (1, 2):
        chosen = res["chosen"][f"stage {stage}"]
        kept = [x for x in res["rows"] if x["stage"] == stage and x["kept"]]
        assert kept[0]["rung"] == "baseline" and chosen["row"]["s_per_kimg"] == kept[-1]["s_per_kimg"]
        assert chosen["speedup"] == chosen["baseline"]["s_per_kimg"] / kept[-1]["s_per_kimg"] >= 1.0
        assert f"chosen for stage {stage}:" in r.stdout
    forms = [m["form"] for m in res["modconv"]]
    assert forms == ["batched (G_c's)", "grouped", "max |batched - grouped|"]
    assert res["modconv"][2]["value"] < 1e-3  # the two forms compute the same layer
    assert r.stdout.count("\n| 1 |") + r.stdout.count("\n| 2 |") == len(rungs)

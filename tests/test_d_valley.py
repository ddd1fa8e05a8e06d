"""benchmarks/d_valley.py: a stage-2 D scoring G's canonical images still, shifted, drifting, and G's own field scaled."""
import json
import re

import torch
from safetensors.torch import save_file

from benchmarks import d_valley
from gendef import GenDeF
from gendef.generator.networks.discriminator import Discriminator

from tests.test_motion_time import TINY

DISC = {"channel_base": 256, "channel_max": 32, "merge_resolution": 8, "tsm": True}


def _export(tmp_path):
    torch.manual_seed(0)
    G = GenDeF(**{**TINY, "deformation_init": "xavier", "field_reference_time": 8.0})
    G.deformation.reset_output()
    G.save_pretrained(str(tmp_path))
    D = Discriminator(resolution=G.resolution, num_frames=3, **DISC)
    save_file(D.state_dict(), str(tmp_path / "discriminator.safetensors"))
    (tmp_path / "discriminator_config.json").write_text(json.dumps({**DISC, "resolution": G.resolution, "num_frames": 3}))
    return tmp_path


def test_every_still_row_scores_the_same_and_motion_changes_the_score(tmp_path, capsys):
    assert d_valley.main([str(_export(tmp_path)), "--clips", "6", "--gap", "4", "--shifts", "0,0.5",
                          "--speeds", "0,2", "--field-scales", "0,1"]) == 0
    rows = dict(re.findall(r"^\| (.+?) \| (-?\d+\.\d+) \|$", capsys.readouterr().out, re.M))
    assert len(rows) == 6
    still = {rows["static shift 0 px"], rows["drift 0 % a frame"], rows["G's own field x0 (0.00 % a frame)"]}
    assert len(still) == 1  # the same canonical images, unmoved: one score
    assert rows["static shift 0.5 px"] != rows["static shift 0 px"] and rows["drift 2 % a frame"] != rows["drift 0 % a frame"]
    own = [k for k in rows if k.startswith("G's own field x1 (")]
    assert own and float(own[0].split("(")[1].split(" ")[0]) > 0  # the xavier start moves

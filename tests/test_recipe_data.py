"""Issue 22, data and training items: chunking, stage-1 frame draw, squash vs crop, stage-2 D head,
and the paper configs that select the official variants (train/README 10)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gendef.data.datasets import ClipDataset, FrameDataset, VideoSource, chunk_videos, fit_frame
from gendef.errors import DatasetError

CONFIGS = Path(__file__).resolve().parents[1] / "train" / "configs"


def _video(root: Path, name: str, values, size=(8, 8)):
    d = root / name
    d.mkdir(parents=True)
    for i, v in enumerate(values):
        Image.fromarray(np.full((*size, 3), v, np.uint8)).save(d / f"{i:06d}.png")


def _src(name: str, n: int) -> VideoSource:
    return VideoSource(name, "dir", "/nowhere", [f"{i:06d}.png" for i in range(n)], n)


# ----------------------------------------------------------------------------- chunking
def test_chunking_512_drops_chunks_under_128_frames():
    out = chunk_videos([_src("a", 1300), _src("b", 1100), _src("c", 100)], 512, 128)
    # 1300 = 512 + 512 + 276 (kept); 1100 = 512 + 512 + 76 (dropped); 100 < 128 (dropped whole)
    assert [(v.name, v.length) for v in out] == [("a#0", 512), ("a#1", 512), ("a#2", 276), ("b#0", 512), ("b#1", 512)]
    assert out[1].frames[0] == "000512.png" and out[2].frames[-1] == "001299.png"
    assert chunk_videos([_src("a", 1300)], 0) == [_src("a", 1300)]  # 0 = off
    with pytest.raises(DatasetError, match="frame folders"):
        chunk_videos([VideoSource("v.mp4", "file", "/v.mp4", None, 600)], 512)


def test_datasets_and_the_metrics_real_set_read_the_same_chunks(tmp_path):
    from gendef.metrics.stylegan_v import frame_set_options, real_frames

    _video(tmp_path, "a", range(0, 100, 10))  # 10 frames -> chunks 4, 4 (the last 2 dropped)
    _video(tmp_path, "b", [200, 210, 220])  # 3 frames -> one chunk of 3
    opts = {"chunk": 4, "chunk_min": 3}
    ds = ClipDataset(tmp_path, 8, num_frames=3, max_dist=4, **opts)
    assert [(v.name, v.length) for v in ds.videos] == [("a#0", 4), ("a#1", 4), ("b#0", 3)]
    frames, _ = ds[(1, 0)]  # chunk a#1 holds frames 4..7 of a: values 40..70
    assert set(((frames[:, 0, 0, 0] + 1) * 127.5).round().int().tolist()) <= {40, 50, 60, 70}
    assert sum(len(b) for b in real_frames(tmp_path, 8, 5, opts)) == 11  # 4 + 4 + 3
    assert sum(len(b) for b in real_frames(tmp_path, 8, 5)) == 13  # unchunked
    # FID's real set is every frame (official: ImageFolderDataset), chunked or not; FVD's is chunked
    assert frame_set_options({**opts, "resize": "squash"}) == {"resize": "squash"}


# ----------------------------------------------------------------------------- stage-1 frame draw
def _colour(x: torch.Tensor) -> int:
    return int(((x[0, 0, 0] + 1) * 127.5).round())


def test_stage1_per_video_draw_weighs_videos_equally(tmp_path):
    _video(tmp_path, "a_short", [0, 0])  # 2 black frames
    _video(tmp_path, "b_long", [100 + 10 * i for i in range(8)])  # 8 grey levels
    every = FrameDataset(tmp_path, 8)
    per_video = FrameDataset(tmp_path, 8, frame_draw="per_video")
    # every frame an item: the short video is 2 of 10 items; one item per video: 1 of 2
    assert len(every) == 10 and sum(_colour(every[(i, 0)]) == 0 for i in range(10)) == 2
    assert len(per_video) == 2 and _colour(per_video[(0, 0)]) == 0
    drawn = {_colour(per_video[(1, s)]) for s in range(40)}  # a random frame of the long video each time
    assert drawn <= {100 + 10 * i for i in range(8)} and len(drawn) >= 6
    with pytest.raises(DatasetError, match="frame_draw"):
        FrameDataset(tmp_path, 8, frame_draw="weighted")


# ----------------------------------------------------------------------------- squash vs crop
def test_squash_keeps_the_whole_2_to_1_frame_crop_keeps_its_centre():
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, :4] = 255  # left quarter white
    crop = fit_frame(img, 8, "crop")  # columns 4..11: all black
    squash = fit_frame(img, 8, "squash")  # 2:1 in x: the white quarter becomes columns 0-1
    assert crop.shape == squash.shape == (8, 8, 3)
    assert crop.max() == 0
    assert (squash[:, :2] == 255).all() and (squash[:, 2:] == 0).all()
    with pytest.raises(DatasetError, match="resize"):
        FrameDataset(Path("/nowhere"), 8, resize="stretch")


# ----------------------------------------------------------------------------- stage-2 D head
def test_video_head_starts_as_the_stage1_output_row():
    from gendef.generator.networks.discriminator import Discriminator
    from train.finetune import init_video_head_from_image

    torch.manual_seed(0)
    d = Discriminator(resolution=32, channel_base=512, channel_max=32, num_frames=3, mbstd_group=2, time_embed_dim=16)
    assert not torch.allclose(d.out_video.weight[0], d.out.weight[0])
    init_video_head_from_image(d)
    c = d.out_video.weight.shape[0]
    assert torch.equal(d.out_video.weight, d.out.weight.expand(c, -1))
    assert torch.equal(d.out_video.bias, d.out.bias.expand(c))
    h = torch.randn(5, d.out.weight.shape[1])
    with torch.no_grad():  # every row of the projection equals the image logit
        torch.testing.assert_close(d.out_video(h), d.out(h).expand(5, c))


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", ["sky256", "taichi256", "ytb256"])
def test_paper_configs_follow_the_official_data_and_training_code(name):
    from train.config import load_config

    path = str(CONFIGS / f"{name}.yaml")
    s1, s2 = load_config(path, [], "pretrain"), load_config(path, [], "finetune")
    assert s1["stage1_frames"] == "per_video"
    assert s1["ema_rampup"] == 0.05 and s2["ema_rampup"] is None  # official: ramp-up off on resume only
    assert s2["video_head_init"] == "image_row" and s2["init_weights"] == "raw"
    assert s1["chunk_frames"] == (0 if name == "sky256" else 512) and s1["chunk_min_frames"] == 128
    assert s1["resize_mode"] == ("squash" if name == "ytb256" else "crop")
    assert s1["hflip"] is (name == "sky256")  # official TaiChi: training.mirror=false
    for cfg in (s1, s2):
        assert cfg["eval_metrics"].split(",")[0] == "fvd2048_16f"  # best/ by FVD16, as official best.pkl
        assert set(cfg["eval_metrics"].split(",")) == {"fvd2048_16f", "fvd2048_128f", "fid50k_full"}
    width = 32768 if name == "ytb256" else 16384  # official networks.py ytb comment: G multiplier 1.0
    assert s1["model"]["channel_base"] == s1["model"]["deformation_channel_base"] == width
    assert s1["disc"]["channel_base"] == 16384
    assert s1["model"]["time_min_period"] == (256 if name == "sky256" else 16)


def test_prepare_squashes_when_asked(tmp_path):
    from gendef.data.prepare import prepare_dataset

    img = np.zeros((8, 16, 3), np.uint8)
    img[:, :4] = 255
    (tmp_path / "src" / "v").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(img).save(tmp_path / "src" / "v" / f"{i:06d}.png")
    means = {}
    for mode in ("crop", "squash"):
        prepare_dataset(tmp_path / "src", tmp_path / mode, 8, progress=False, resize=mode)
        means[mode] = np.asarray(Image.open(tmp_path / mode / "v" / "000000.png")).mean()
    assert means == {"crop": 0.0, "squash": 255 * 2 / 8}


def test_stage2_starts_from_stage1_raw_g_and_fills_the_video_head(tmp_path):
    """Official stage 2: G and G_ema from stage 1's raw G; D's new head = stage 1's output row."""
    from safetensors.torch import load_file

    from train import finetune, pretrain
    from train.checkpoint import RAW_GENERATOR
    from train.config import load_config

    tiny = str(CONFIGS / "tiny.yaml")
    for i in range(2):
        _video(tmp_path / "data", f"v{i}", [40 * i + 10 * t for t in range(6)], size=(16, 16))
    out = tmp_path / "stage1"
    rc = pretrain.main(["--config", tiny, f"data={tmp_path / 'data'}", f"output_dir={out}", "max_steps=2",
                        "progress=false", "sample_every=0", "ema_kimg=0.001", "stage1_frames=per_video"])
    assert rc == 0
    raw, ema = load_file(str(out / RAW_GENERATOR)), load_file(str(out / "model.safetensors"))
    moved = [k for k in raw if k.startswith("canonical.") and k in ema and not torch.equal(raw[k], ema[k])]
    assert moved  # raw G and G_ema differ after 2 steps, so the choice below is visible
    for weights, video_head in (("raw", "image_row"), ("ema", "random")):
        cfg = load_config(tiny, [f"init={out}", f"init_weights={weights}", f"video_head_init={video_head}"], "finetune")
        G, D, _ = finetune.load_stage1(cfg, "cpu")
        want = raw if weights == "raw" else ema
        assert all(torch.equal(G.state_dict()[k], want[k]) for k in moved)
        rows_equal = torch.equal(D.out_video.weight, D.out.weight.expand_as(D.out_video.weight))
        assert rows_equal is (video_head == "image_row")

"""Settings as typed objects (issue 29, item 1): one definition per key, checked once, old files load."""
import dataclasses
import json
import re
from pathlib import Path

import pytest

from gendef import GenDeF
from gendef.errors import ModelConfigError
from gendef.generator import build
from gendef.generator.config import CanonicalConfig, DiscriminatorConfig, GenDeFConfig, MotionConfig
from gendef.settings import Rule, flat_fields
from train.config import ConfigError, DEFAULTS, load_config, validate_config
from train.config_schema import defaults, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_YAML = str(ROOT / "train" / "configs" / "tiny.yaml")


def _one_line(e) -> str:
    text = str(e.value if hasattr(e, "value") else e)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize("cls, n", [(GenDeFConfig, 37), (DiscriminatorConfig, 10), (TrainConfig, 77)])
def test_every_field_has_meaning_default_rule_and_is_documented(cls, n):
    fields = flat_fields(cls)
    assert len(fields) == n
    doc = GenDeF.__doc__ if cls is GenDeFConfig else cls.__doc__
    for key, (_, f) in fields.items():
        meta = f.metadata
        assert len(meta["meaning"]) > 10 and isinstance(meta["rule"], Rule), key
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, key
        assert f"\n        {key}: {meta['meaning'][:20]}" in doc, key
        entry = re.split(r"\n {8}(?=\S)", doc.split(f"\n        {key}: ")[1])[0]
        assert "Rule:" in entry and "Default:" in entry, key
    assert cls.__doc__.count("Default:") == n


def test_one_definition_gives_signature_schema_and_defaults():
    from gendef.generator.config import MODEL_SCHEMA, RECIPE_DEFAULTS
    from train.config_schema import TRAIN_SCHEMA

    assert list(MODEL_SCHEMA) == GenDeF.config_keys() == list(flat_fields(GenDeFConfig))
    assert set(DEFAULTS) == set(TRAIN_SCHEMA) == set(flat_fields(TrainConfig))
    assert RECIPE_DEFAULTS["motion_mapping"] == GenDeFConfig().motion.mapping == "mlp"
    assert DEFAULTS["lr"] == TrainConfig.__dataclass_fields__["lr"].default == 0.0025
    cfg = GenDeFConfig.from_flat({"channel_base": 512, "deformation_channel_base": 64, "time_num_freqs": 8})
    assert (cfg.canonical.channel_base, cfg.deformation.channel_base, cfg.motion.num_freqs) == (512, 64, 8)
    assert cfg.to_flat()["channel_base"] == 512 and len(cfg.to_flat()) == 37


@pytest.fixture
def counted(monkeypatch):
    """Counts GenDeFConfig objects made (each checks every key once) and meta-device builds."""
    calls = {"configs": 0, "meta_builds": 0}
    post_init, build_networks = GenDeFConfig.__post_init__, build.build_networks

    def counting_post_init(self):
        calls["configs"] += 1
        post_init(self)

    def counting_build(config):
        calls["meta_builds"] += 1
        return build_networks(config)

    monkeypatch.setattr(GenDeFConfig, "__post_init__", counting_post_init)
    monkeypatch.setattr(build, "build_networks", counting_build)
    return calls


def test_a_model_build_checks_once(counted, tiny_gendef_kwargs):
    model = GenDeF(**tiny_gendef_kwargs)
    assert counted == {"configs": 1, "meta_builds": 1}
    GenDeF(model.config)  # an object already estimated: built, not checked or estimated again
    assert counted == {"configs": 1, "meta_builds": 1}


def _frames(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for v in range(2):
        base = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        (root / f"v{v}").mkdir(parents=True)
        for t in range(4):
            Image.fromarray(np.roll(base, t, axis=1)).save(root / f"v{v}" / f"{t:04d}.png")
    return root


def test_a_training_start_checks_the_model_once(counted, tmp_path):
    from train import pretrain

    data = _frames(tmp_path / "frames")
    rc = pretrain.main(["--config", TINY_YAML, f"data={data}", f"output_dir={tmp_path / 'run'}", "max_steps=1",
                        "progress=false", "sample_every=0", "health_seeds=0"])
    assert rc == 0
    assert counted == {"configs": 1, "meta_builds": 1}


def test_refusals_are_one_line_before_any_build(counted, tiny_gendef_kwargs):
    with pytest.raises(ModelConfigError) as e:
        GenDeF(**tiny_gendef_kwargs, resolutoin=32)
    assert "unknown model config key(s) 'resolutoin'; valid keys: " in _one_line(e) and "z_dim" in str(e.value)
    with pytest.raises(ModelConfigError) as e:
        GenDeF(**dict(tiny_gendef_kwargs, deformation_channel_max=0))
    assert "deformation_channel_max must be in [1, 4096], got 0" == _one_line(e)
    with pytest.raises(ModelConfigError, match="motion_kernel_size must be a positive odd integer"):
        MotionConfig(kernel_size=4)
    with pytest.raises(ModelConfigError, match="canonical_backbone must be one of"):
        CanonicalConfig(backbone="stylegan9")
    assert counted["meta_builds"] == 0
    with pytest.raises(ModelConfigError) as e:
        GenDeF(**dict(tiny_gendef_kwargs, resolution=2048, channel_base=1 << 20, channel_max=4096))
    assert "parameters" in _one_line(e) and counted["meta_builds"] == 1  # refused on meta, nothing allocated


def test_training_keys_refused_in_one_line():
    cfg = load_config(TINY_YAML, ["data=d", "output_dir=o", "sync_every=0"], "pretrain")
    with pytest.raises(ConfigError) as e:
        validate_config(cfg, "pretrain")
    assert _one_line(e) == "sync_every must be in [1, 2.14748e+09], got 0"
    with pytest.raises(ConfigError, match="unknown train config key"):
        TrainConfig.from_dict({"lrr": 1})
    with pytest.raises(ConfigError, match=r"^model: unknown model config key\(s\) 'zdim'"):
        validate_config(load_config(TINY_YAML, ["data=d", "output_dir=o", "model.zdim=3"], "finetune") | {"init": "i"}, "finetune")


def test_an_old_flat_config_json_loads_and_is_written_back_the_same(tmp_path):
    old = json.loads((FIXTURES / "old_config.json").read_text())  # written by GenDeF before issue 29
    model = GenDeF(**old)
    assert model.config.mtm_resolutions == (8, 16) and model.config.deformation.mtm_resolutions == (4, 16)
    model.save_pretrained(tmp_path / "ck")
    written = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert {k: written[k] for k in old} == old and set(written) - set(old) == {"field_reference_time", "warp_interpolation"}
    assert written["field_reference_time"] is None and written["warp_interpolation"] == "bilinear"  # later keys: defaults
    loaded = GenDeF.from_pretrained(tmp_path / "ck")
    assert loaded.config == model.config and loaded.canonical.layers[3].offset is not None


def test_the_32px_default_config_json_without_the_new_keys_loads():
    """The 32 px default's config.json (shipped until issue 27): 22 keys, every later one at its default."""
    shipped = json.loads((FIXTURES / "default32_config.json").read_text())
    flat = GenDeFConfig.from_flat(shipped).to_flat()
    assert {k: flat[k] for k in shipped} == shipped and len(shipped) == 22 and len(flat) == 37
    assert GenDeF(**shipped).config.to_flat() == flat


def test_an_old_state_pack_config_still_validates_and_builds_its_model():
    old = json.loads((FIXTURES / "old_pack_config.json").read_text())  # a pack's state.json "config", pre issue 29
    settings = validate_config(dict(old), "pretrain")
    now = settings.train.as_dict()
    assert {k: now[k] for k in old} == old  # every old key as it was; keys added since take their defaults
    assert {k: now[k] for k in now if k not in old} == {k: v for k, v in defaults().items() if k not in old}
    assert settings.model == GenDeFConfig.from_flat(old["model"]) and settings.model.resolution == 128
    assert settings.disc.channel_max == 192 and settings.model.size[0] > 1e6

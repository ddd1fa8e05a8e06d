"""The generator networks built from their former keyword arguments (tests written before the
networks took a GenDeFConfig): each maps its keywords onto the model's flat keys and builds the
network from the resulting config, so these tests exercise the same code as GenDeF does.
``isinstance(x, CanonicalGenerator)`` here is ``isinstance`` against the library's class."""
from gendef.generator.config import MODEL_SCHEMA, GenDeFConfig
from gendef.generator.networks import canonical, deformation, stylegan3
from gendef.settings import check_value


def check_mtm_resolutions(value):
    """The rule of the ``mtm_resolutions`` key (was a function of networks/mtm.py before the rule moved
    into GenDeFConfig)."""
    return check_value("mtm_resolutions", MODEL_SCHEMA["mtm_resolutions"], value)


class _ByKeyword(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.network)


class CanonicalGenerator(metaclass=_ByKeyword):
    network = canonical.CanonicalGenerator

    def __new__(cls, resolution=64, z_dim=128, w_dim=128, channel_base=8192, channel_max=256, mapping_layers=4,
                feature_layer=None, mtm_resolutions=None, mtm_mask=False):
        cfg = GenDeFConfig.from_flat(dict(
            resolution=resolution, z_dim=z_dim, w_dim=w_dim, channel_base=channel_base, channel_max=channel_max,
            mapping_layers=mapping_layers, canonical_feature_layer=feature_layer, mtm=mtm_resolutions is not None,
            mtm_resolutions=mtm_resolutions, mtm_mask=mtm_mask))
        return cls.network(cfg)


class StyleGAN3Generator(metaclass=_ByKeyword):
    network = stylegan3.StyleGAN3Generator

    def __new__(cls, resolution=64, z_dim=128, w_dim=128, channel_base=8192, channel_max=256, mapping_layers=2,
                feature_layer=None, mtm_resolutions=None, mtm_mask=False, update_magnitude_ema=True,
                mixed_precision="none", mixed_precision_res=4):
        cfg = GenDeFConfig.from_flat(dict(
            canonical_backbone="stylegan3", resolution=resolution, z_dim=z_dim, w_dim=w_dim, channel_base=channel_base,
            channel_max=channel_max, mapping_layers=mapping_layers, canonical_feature_layer=feature_layer,
            mtm=mtm_resolutions is not None, mtm_resolutions=mtm_resolutions, mtm_mask=mtm_mask,
            update_magnitude_ema=update_magnitude_ema, mixed_precision=mixed_precision,
            mixed_precision_res=mixed_precision_res))
        return cls.network(cfg)


class DeformationGenerator(metaclass=_ByKeyword):
    network = deformation.DeformationGenerator

    def __new__(cls, resolution=64, z_dim=128, w_dim=128, motion_dim=96, canonical_channels=32,
                canonical_feature_dim=32, channel_base=4096, channel_max=128, mapping_layers=2,
                use_canonical_feature=True, mtm_resolutions=None, motion_input="style", init="zero",
                mtm_mask=False, mtm_placement="all", feature_resize="pool"):
        cfg = GenDeFConfig.from_flat(dict(
            resolution=resolution, z_dim=z_dim, w_dim=w_dim, canonical_feature_dim=canonical_feature_dim,
            deformation_channel_base=channel_base, deformation_channel_max=channel_max,
            deformation_mapping_layers=mapping_layers, use_canonical_feature=use_canonical_feature,
            mtm=mtm_resolutions is not None, deformation_mtm_resolutions=mtm_resolutions, motion_input=motion_input,
            deformation_init=init, mtm_mask=mtm_mask, mtm_placement=mtm_placement, canonical_feature_resize=feature_resize))
        return cls.network(cfg, motion_dim, canonical_channels)

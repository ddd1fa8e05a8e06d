"""The GAN: ``GenDeF`` = G_c (canonical image) + G_d (deformation field) + warp.

- :mod:`~gendef.generator.gendef`: the ``GenDeF`` module (sampling, save/load, hub I/O).
- :mod:`~gendef.generator.config`: the model config schema, checked before anything is built.
- :mod:`~gendef.generator.losses`: the GAN losses, R1 and the paper's L_reg.
- :mod:`~gendef.generator.networks`: the networks (layers, StyleGAN2/3, MTM, G_d, motion codes, D).
"""

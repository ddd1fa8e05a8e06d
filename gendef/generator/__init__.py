"""The GAN: ``GenDeF`` = G_c (canonical image) + G_d (deformation field) + warp.

- :mod:`~gendef.generator.model`: the ``GenDeF`` module (sampling, save/load, hub I/O).
- :mod:`~gendef.generator.config`: the model settings (``GenDeFConfig`` with its canonical,
  deformation and motion parts, ``DiscriminatorConfig``): one typed definition per key.
- :mod:`~gendef.generator.build`: the networks built from a ``GenDeFConfig`` and the size budget
  checked (once, on the meta device) before they are.
- :mod:`~gendef.generator.losses`: the GAN losses, R1 and the paper's L_reg.
- :mod:`~gendef.generator.networks`: the networks (layers, StyleGAN2/3, MTM, G_d, motion codes, D).
"""

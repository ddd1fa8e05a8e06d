"""The networks: layers, StyleGAN2/3 G_c, MTM, G_d, motion codes and the video discriminator."""

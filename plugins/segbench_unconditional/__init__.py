"""Segmenters built on an unconditional DDPM of the images: the seed paper's X-ray DDPM as a stage
(`network`), `ddpm-features` (Baranchuk et al. 2021: pixel MLPs on the DDPM's decoder activations) and
`anomaly-ddpm` (Pinaya et al. 2022: residuals of a healthy-image DDPM's reconstructions), plus FID/KID of
synthetic X-rays (FID/KID: `segbench.metrics.fidelity`)."""

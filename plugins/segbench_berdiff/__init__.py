"""BerDiff (Chen et al. MICCAI 2023): conditional Bernoulli diffusion on binary masks, on diff-add's backbone."""

"""Built-in diffusion segmenters (diff-add, diff-concat and its Wolleb et al. configuration): presets, networks, plugin."""

"""Built-in diffusion segmenters (diff-add, diff-concat): schedules, samplers, networks, plugin."""

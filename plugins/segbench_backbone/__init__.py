"""The conditional backbone the generative segmenters share: NoiseUNet, RRDB image encoder, add/concat
conditioning, its hyperparameters and presets, the training presets that go with it, and the DDPM
noise schedules and samplers (DDIM, ancestral DDPM, DPM-Solver++) every DDPM-based model uses.

A library, not a plugin (it registers nothing): the diffusion plugin (DDPM/DDIM) and the score plugin
(NCSN, score-SDE) both build on it, so their models compare on equal networks trained the same way,
and neither imports the other's internals. Torch is imported only by the network modules.
"""

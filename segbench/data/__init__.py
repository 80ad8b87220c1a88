"""Data preparation: resize once to the run's size, validate, cache as uint8 arrays (`prepare`); the torch-free
parts (augmentation policies, trees, checks) import without torch, so this package imports nothing itself."""

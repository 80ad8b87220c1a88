"""The engine: seeding, devices, training, evaluation and checkpoints."""

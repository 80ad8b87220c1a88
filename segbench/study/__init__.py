"""Studies: a grid of ordinary runs (datasets x models x seeds x folds) read from a TOML file, run by an
executor plugin, resumed cell by cell, and reported over seeds with uncertainty from seeds and images.

Modules: `schema` (the study file), `grid` (its cells and their stable ids), `directory` (the study
directory and its cells' state), `jobs` (what runs one cell, in any process), `executors` (the built-in
executor plugin: local, submitit), `statistics` (aggregation over seeds), `run` (`segbench study run`).
"""

"""The run plan: everything a run will do, resolved and validated once from the request and the registry.

Modules: `request` (what was asked), `training` (the engine's settings and budget), `hyperparameters`
(a model's typed hyperparameters, parsed once), `run_plan` (the frozen plan and its JSON form), `build`
(request + registry -> plan).
"""

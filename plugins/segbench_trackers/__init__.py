"""Built-in experiment trackers: TensorBoard and MLflow, fed by segbench's lifecycle hooks only.

`segbench run --track tensorboard,mlflow` (or a study's `track = [...]`) turns them on for one run;
segbench's own files stay the record, so a tracker that is not installed or cannot reach its server is
one warning line and the run goes on. Modules: `plugin` (the hooks and the run's active trackers),
`tracker` (what every tracker implements, and the names both give what they log), `tensorboard_tracker`,
`mlflow_tracker`.
"""

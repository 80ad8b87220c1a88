"""`segbench predict`: a finished run's trained model applied to image files, as the run applied it.

Modules: `inputs` (which files, and the sample id each gets), `outputs` (what is written per input),
`predict` (the request and the command's work).
"""

"""segbench_medsegbench: MedSegBench's 35 datasets as `medsegbench:<flag>`, read from the package's npz files.

Registered by `segbench_medsegbench.plugin` through the "segbench" entry-point group, the same route a
third-party plugin takes.
"""

"""segbench_cxr: the built-in chest X-ray datasets (cxr-phantom, covid-qu-ex, folder).

Registered by `segbench_cxr.plugin` through the "segbench" entry-point group,
the same route a third-party plugin takes.
"""

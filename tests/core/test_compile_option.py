"""`--compile`: every child module of a model is compiled in place; parameter names stay those of the plain model."""

from dataclasses import replace

from segbench.engine.device import run_device
from segbench.plan.build import build_plan
from segbench.plan.request import RunRequest
from segbench.runner import build_network

CPU = run_device("cpu", "auto")


def test_compile_wraps_children_and_keeps_state_dict_keys(registry):
    plan = build_plan(RunRequest("lung", ["toy-cnn"], dataset="toy", preset="tiny"), registry, CPU)
    plain = build_network(registry, plan.models[0], plan)
    compiled = build_network(registry, plan.models[0], replace(plan, compile=True))
    children = list(compiled.children())
    assert children and all(child._compiled_call_impl is not None for child in children)
    assert all(child._compiled_call_impl is None for child in plain.children())
    assert list(compiled.state_dict()) == list(plain.state_dict())

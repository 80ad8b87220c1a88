"""`--compile`: every child module of a model is compiled in place; parameter names stay those of the plain model."""

from segbench.runner import RunRequest, _build


def test_compile_wraps_children_and_keeps_state_dict_keys(registry):
    plain = _build(registry, "toy-cnn", registry.model("toy-cnn").hyperparameters("tiny"), RunRequest("lung", ["toy-cnn"]))
    compiled = _build(registry, "toy-cnn", registry.model("toy-cnn").hyperparameters("tiny"),
                      RunRequest("lung", ["toy-cnn"], compile=True))
    children = list(compiled.children())
    assert children and all(child._compiled_call_impl is not None for child in children)
    assert all(child._compiled_call_impl is None for child in plain.children())
    assert list(compiled.state_dict()) == list(plain.state_dict())

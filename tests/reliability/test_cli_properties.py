"""Issue point 5: property-based tests over the CLI's options and values (hypothesis).

No input gives a traceback or an internal error, and every rejected value is answered with an
error that names the option and what is valid. A run that gets past validation stops at a
sentinel before any work, so the properties run in seconds.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import cli

BASE = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--quiet")
EXAMPLES = 40
# derandomize: the same examples on every run, so a CI result does not depend on the draw
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


class Accepted(Exception):
    """The run passed validation (raised where it would start working)."""


@contextmanager
def stop_before_work():
    with mock.patch("segbench.runner.load_data", side_effect=Accepted):
        yield


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and stderr; an accepted run is exit code None. Other exceptions fail the test (in cli())."""
    with stop_before_work():
        try:
            code, _, stderr = cli(*args)
        except Accepted:
            return None, ""
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    return code, stderr


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
def integral(s: str) -> bool:
    """Whether s reads as a whole number; the CLI may accept such spellings ("2.00", "1_000") as integers."""
    try:
        return float(s).is_integer()
    except ValueError:
        return s.strip().lstrip("+-").isdigit()


not_an_int = text.filter(lambda s: not integral(s))
def not_a_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return True
    return False


below = lambda low: st.integers(max_value=low - 1).map(str)  # noqa: E731
BAD_VALUES = {
    # option: (bad values, what the error must say besides the option)
    "--epochs": (below(1) | not_an_int, ["at least 1", "integer"]),
    "--batch-size": (below(1) | not_an_int, ["at least 1", "integer"]),
    "--eval-samples": (below(1) | not_an_int, ["at least 1", "integer"]),
    "--eval-batch-size": (below(1) | not_an_int, ["at least 1", "integer"]),
    "--ensemble": (below(1) | not_an_int, ["at least 1", "integer"]),
    "--image-size": (below(16) | st.integers(min_value=4097).map(str) | not_an_int, ["from 16 to 4096", "integer"]),
    "--seed": (not_an_int, ["integer"]),
    "--mask-threshold": (below(0) | st.integers(min_value=255).map(str) | not_an_int, ["0 to 254", "integer"]),
    "--lr": (st.floats(max_value=0).map(str) | st.sampled_from(["inf", "nan", "-inf"]) | text.filter(not_a_float),
             ["positive finite", "valid number"]),
    "--checkpoint-every": (st.floats(max_value=-1e-9).map(str) | st.sampled_from(["inf", "nan"]) | text.filter(not_a_float),
                           [">= 0", "valid number"]),
    "--preset": (text.filter(lambda s: s not in ("auto", "tiny", "small", "paper")), ["valid: auto, tiny, small, paper"]),
    "--device": ((text | text.map("cpu:".__add__)).filter(lambda s: s not in ("auto", "cpu") and not (
        s.startswith("cpu:") and s[4:].isdigit() and int(s[4:]) == 0)), ["valid: "]),
    "--dataset": (text.filter(lambda s: s not in ("toy", "cxr-phantom", "folder", "covid-qu-ex")), ["valid: "]),
    "--task": (text.filter(lambda s: s not in ("lung", "infection")), ["valid: lung, infection"]),
    "--models": (text.filter(lambda s: not {m.strip() for m in s.split(",")} & {"toy-cnn", "faulty-cnn"}), ["valid: "]),
}
# The word an error uses for an option when it quotes the value instead of the flag.
NOUN = {"--preset": "preset", "--device": "device", "--dataset": "dataset", "--task": "task", "--models": "model"}


@pytest.mark.parametrize("option", list(BAD_VALUES))
def test_every_bad_value_is_refused_naming_option_and_valid_values(option):
    values, hints = BAD_VALUES[option]

    @SETTINGS
    @given(value=values)
    def check(value):
        args = list(BASE)
        if option in args:  # the bad value replaces the base one
            del args[args.index(option):args.index(option) + 2]
        code, stderr = invoke(*args, f"{option}={value}")
        assert code == 2, (option, value, code, stderr)
        flat = " ".join(stderr.split())
        assert option in flat or NOUN.get(option, "\0") in flat, (option, value, flat)
        assert any(hint in flat for hint in hints), (option, value, flat)

    check()


SET_VALUES = st.one_of(
    text.filter(lambda s: "=" not in s),
    st.builds(lambda k, v: f"toy-cnn.{k}={v}", text.filter(lambda s: s not in ("width", "noise", "epochs", "batch_size", "lr")
                                                         and "=" not in s and "." not in s and s.strip()), text),
    st.builds(lambda v: f"toy-cnn.width={v}", not_an_int),
    st.builds(lambda m: f"{m}.lr=1", text.filter(lambda s: s != "toy-cnn" and "=" not in s and s)),
    # engine settings outside their range
    st.builds(lambda k, v: f"toy-cnn.{k}={v}", st.sampled_from(["epochs", "batch_size"]), below(1)),
    st.builds(lambda k, v: f"toy-cnn.{k}={v}", st.sampled_from(["lr", "weight_decay", "grad_clip", "explode_factor"]),
              st.floats(max_value=-1e-9).map(str) | st.just("nan")),
    st.builds(lambda k, v: f"toy-cnn.{k}={v}", st.sampled_from(["ema_decay", "warmup_fraction"]),
              st.floats(min_value=1).map(str) | st.floats(max_value=-1e-9).map(str)),
)


@SETTINGS
@given(item=SET_VALUES)
def test_bad_set_is_refused_naming_set_and_valid_keys(item):
    code, stderr = invoke(*BASE, "--set", item)
    assert code == 2, (item, stderr)
    flat = " ".join(stderr.split())
    assert "--set" in flat and ("MODEL.KEY=VALUE" in flat or "valid:" in flat or "expected a value like" in flat
                                or "not in --models" in flat or " must be " in flat), flat


OPTIONS = ["--task", "--models", "--dataset", "--data-root", "--preset", "--seed", "--epochs", "--batch-size", "--lr",
           "--eval-samples", "--eval-batch-size", "--ensemble", "--image-size", "--device", "--out", "--set",
           "--checkpoint-every", "--mask-threshold", "--nope"]
VALUES = st.one_of(text, st.sampled_from(["0", "1", "-1", "16", "1e-3", "nan", "inf", "lung", "toy", "toy-cnn", "auto",
                                          "cpu", "tiny", "toy-cnn.width=4", ""]))
COMMANDS = st.sampled_from([["run"], ["run", "--resume"], ["list"], ["info"], ["report"], ["plugins"], ["nope"]])


@SETTINGS
@given(command=COMMANDS, options=st.lists(st.tuples(st.sampled_from(OPTIONS), VALUES), max_size=6),
       positional=st.lists(text, max_size=2))
def test_any_command_line_is_answered_without_a_traceback(command, options, positional):
    """Random commands, options and values: accepted, or exit 2 with an error; never exit 1 or a traceback."""
    code, stderr = invoke(*command, *positional, *(f"{k}={v}" for k, v in options))
    assert code in (None, 0, 2), (command, options, positional, code, stderr)
    if code == 2:
        assert "error" in stderr.lower(), (command, options, positional, stderr)

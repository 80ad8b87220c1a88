"""segbench.deferred: a factory that imports its module when called."""

import pickle
import sys

import pytest

from segbench import deferred


def test_imports_on_call_reaches_dotted_names_and_pickles():
    sys.modules.pop("colorsys", None)
    factory = deferred("colorsys:rgb_to_hsv")
    assert "colorsys" not in sys.modules  # nothing imported before the call
    assert factory(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0) and "colorsys" in sys.modules
    assert deferred("pathlib:Path.cwd")() == __import__("pathlib").Path.cwd()
    assert pickle.loads(pickle.dumps(factory)) == factory


def test_a_target_without_one_colon_is_refused():
    with pytest.raises(ValueError, match="deferred target 'colorsys.rgb_to_hsv': give 'module:name'"):
        deferred("colorsys.rgb_to_hsv")

import pytest

from tests.conftest import single_thread


one_thread = pytest.fixture(autouse=True)(single_thread)

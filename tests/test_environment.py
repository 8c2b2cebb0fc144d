"""Environment variables set for a moment, then as they were."""

from __future__ import annotations

import os

import pytest

from qzhou_eval.environment import temporary_environment


def test_each_variable_is_as_it_was_after_the_block_even_after_an_error(monkeypatch):
    monkeypatch.setenv("QZ_TEST_SET", "before")
    monkeypatch.delenv("QZ_TEST_ABSENT", raising=False)
    with (
        pytest.raises(RuntimeError),
        temporary_environment({"QZ_TEST_SET": "inside", "QZ_TEST_ABSENT": "inside"}),
    ):
        assert os.environ["QZ_TEST_SET"] == os.environ["QZ_TEST_ABSENT"] == "inside"
        raise RuntimeError
    assert os.environ["QZ_TEST_SET"] == "before"
    assert "QZ_TEST_ABSENT" not in os.environ

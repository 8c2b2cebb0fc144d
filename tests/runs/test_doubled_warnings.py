"""mteb logs some warnings and warns them too: the run prints the logged line only."""

from __future__ import annotations

import logging
import warnings

import mteb

from qzhou_eval.runs.scoring import quiet_libraries


def test_a_superseded_task_is_said_once(caplog) -> None:
    task = mteb.get_task("STSBenchmark")  # superseded by STSBenchmark.v2
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        task.check_if_dataset_is_superseded()
        assert [str(w.message) for w in raised] == [caplog.records[-1].getMessage()]
        raised.clear()
        quiet_libraries()
        with caplog.at_level(logging.WARNING):
            task.check_if_dataset_is_superseded()
        assert raised == []
    assert "is superseded by 'STSBenchmark.v2'" in caplog.records[-1].getMessage()

"""The MultilingualSentiment definition change."""

from __future__ import annotations

import pytest
from mteb.abstasks import AbsTask

from qzhou_eval.errors import ConfigError
from qzhou_eval.report.definitions import (
    CURRENT,
    DEFAULT_DEFINITION,
    PUBLISHED,
    affected_tasks,
    apply_definition,
    check_definition,
    describe_definition,
    other_definition,
)


def _ms(tasks: list[AbsTask]) -> AbsTask:
    return next(t for t in tasks if t.metadata.name == "MultilingualSentiment")


def test_published_counts_validation_only_without_touching_mteb_tasks(
    cmn_tasks: list[AbsTask],
) -> None:
    before = list(_ms(cmn_tasks).eval_splits)
    published = apply_definition(cmn_tasks, PUBLISHED)
    assert list(_ms(published).eval_splits) == ["validation"]
    assert list(_ms(cmn_tasks).eval_splits) == before == ["validation", "test"]
    assert list(_ms(apply_definition(cmn_tasks, CURRENT)).eval_splits) == before
    others = [(a, b) for a, b in zip(cmn_tasks, published, strict=True) if a is not b]
    assert [a.metadata.name for a, _ in others] == ["MultilingualSentiment"]


def test_only_cmteb_is_affected(cmn_tasks: list[AbsTask], eng_tasks: list[AbsTask]) -> None:
    assert affected_tasks(cmn_tasks) == ["MultilingualSentiment"]
    assert affected_tasks(eng_tasks) == []
    assert describe_definition(PUBLISHED, eng_tasks) is None
    assert "validation only" in describe_definition(PUBLISHED, cmn_tasks)
    assert "validation and test" in describe_definition(CURRENT, cmn_tasks)


def test_names() -> None:
    assert DEFAULT_DEFINITION == PUBLISHED
    assert other_definition(PUBLISHED) == CURRENT
    assert other_definition(CURRENT) == PUBLISHED
    with pytest.raises(ConfigError, match="definition='old'"):
        check_definition("old")

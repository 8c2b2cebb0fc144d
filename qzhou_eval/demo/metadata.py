"""``TaskMetadata`` for the demo tasks: the fields every demo task shares, filled in one place.

The data are built at run time from installed packages, so ``dataset`` holds a placeholder
``path`` under :data:`DEMO_DATASET_PREFIX` (never given to ``datasets.load_dataset``) and a
``revision`` naming the sampling version and the source package's installed version: a result
computed from other data then carries another dataset revision.
"""

from __future__ import annotations

from typing import Any, Literal

from mteb.abstasks.task_metadata import TaskMetadata

from qzhou_eval.demo.sources import DISTRIBUTIONS, package_version

# Bump when the way any demo task samples or formats its data changes.
DATA_VERSION = "demo-v1"
DEMO_DATASET_PREFIX = "qzhou-eval-demo/"

DemoLanguage = Literal["eng", "zho"]
EVAL_LANGS: dict[DemoLanguage, list[str]] = {"eng": ["eng-Latn"], "zho": ["cmn-Hans"]}

# mteb's convention: text-to-text for pair and ranking tasks, text-to-category otherwise.
_CATEGORY = {
    "Retrieval": "t2t",
    "Reranking": "t2t",
    "STS": "t2t",
    "PairClassification": "t2t",
    "Classification": "t2c",
    "Clustering": "t2c",
}


def demo_metadata(
    *,
    name: str,
    task_type: str,
    language: DemoLanguage,
    source: str,
    description: str,
    prompt: str,
    main_score: str,
    reference: str,
    bibtex_citation: str = "",
    **fields: Any,
) -> TaskMetadata:
    """Metadata for one demo task.

    ``source`` is the import name of the package whose files the task reads (a key of
    :data:`~qzhou_eval.demo.sources.DISTRIBUTIONS`); ``fields`` are further ``TaskMetadata``
    fields (date, domains, license, ...).
    """
    dist = DISTRIBUTIONS[source]
    return TaskMetadata(
        name=name,
        description=description,
        prompt=prompt,
        reference=reference,
        dataset={
            "path": f"{DEMO_DATASET_PREFIX}{name}",
            "revision": f"{DATA_VERSION}+{dist}-{package_version(source)}",
        },
        type=task_type,
        category=_CATEGORY[task_type],
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=EVAL_LANGS[language],
        main_score=main_score,
        dialect=[],
        bibtex_citation=bibtex_citation,
        **fields,
    )

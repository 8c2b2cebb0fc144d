"""Fixtures for the report tests: benchmark tasks, the published results, copies to alter.

Golden data lives in the repository: the package's copy of the published QZhou results (the
report's default reference) and ``tests/data/reference/`` (per-task CSVs, the peers' results).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mteb
import pytest
from mteb.abstasks import AbsTask

from qzhou_eval.report.compare import package_reference_dir
from tests.report.report_testdata import CMN, ENG


@pytest.fixture(scope="session")
def package_results() -> Path:
    """The published QZhou results shipped in the package (mteb results layout)."""
    return package_reference_dir()


@pytest.fixture(scope="session")
def eng_tasks() -> list[AbsTask]:
    return list(mteb.get_benchmark(ENG).tasks)


@pytest.fixture(scope="session")
def cmn_tasks() -> list[AbsTask]:
    return list(mteb.get_benchmark(CMN).tasks)


@pytest.fixture
def results_copy(tmp_path: Path, package_results: Path) -> Iterator[Path]:
    """A writable copy of the published QZhou results, to remove or alter files in."""
    dest = tmp_path / "results"
    shutil.copytree(package_results, dest)
    yield dest

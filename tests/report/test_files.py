"""The report's files: CSV numbers without float noise, PNGs only where there is a plot."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from qzhou_eval.report import files
from tests.report.test_cli import report


def test_csv_numbers_drop_float_noise() -> None:
    assert repr(0.1 * 7.317336) == "0.7317336000000001"  # arithmetic's rounding
    assert files._num(0.1 * 7.317336) == "0.7317336"
    assert files._num(0.7317335999999999) == "0.7317336"
    assert files._num(0.1 + 0.2) == "0.3"
    assert files._num(0.123456789012345) == "0.123456789"  # 10 decimals, the repr of that
    assert files._num(None) == ""


def test_report_csvs_have_at_most_10_decimals(package_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report(f"results_dir={package_results}", "benchmark=cmteb", f"out_dir={out}")
    written = sorted(p.name for p in out.iterdir())
    assert any(n.endswith("_compare.csv") for n in written)  # compared with the published scores
    assert any(n.endswith(".png") for n in written)  # ... so there is a plot
    numbers = [
        cell
        for path in out.glob("*.csv")
        for row in csv.reader(path.open())
        for cell in row
        if re.fullmatch(r"-?\d+\.\d+(e-?\d+)?", cell)
    ]
    assert numbers and all(len(n.split(".")[1].split("e")[0]) <= 10 for n in numbers)


def test_a_report_without_reference_writes_no_png(package_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report(f"results_dir={package_results}", "reference=false", f"out_dir={out}")
    assert not list(out.glob("*.png")) and list(out.glob("*.csv"))


def test_a_report_leaves_no_file_of_an_earlier_one(package_results: Path, tmp_path: Path) -> None:
    # the same benchmark again, without a reference: the earlier comparison and its plot go
    out = tmp_path / "out"
    report(f"results_dir={package_results}", "benchmark=cmteb", f"out_dir={out}")
    before = {p.name for p in out.iterdir()}
    assert any(n.endswith(".png") for n in before) and any("_compare" in n for n in before)
    (out / "mteb_eng_v2_types_x.png").write_bytes(b"another benchmark's: kept")
    (out / "notes.txt").write_text("the user's: kept")
    report(f"results_dir={package_results}", "benchmark=cmteb", "reference=false", f"out_dir={out}")
    after = {p.name for p in out.iterdir()}
    assert not [
        n for n in after if n.startswith("cmteb") and (n.endswith(".png") or "_compare" in n)
    ]
    assert {"mteb_eng_v2_types_x.png", "notes.txt"} <= after
    assert {n for n in before if n.endswith(".md")} <= after

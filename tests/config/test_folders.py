"""Where a results folder can be."""

from __future__ import annotations

import pytest

from qzhou_eval.config.folders import check_results_place
from qzhou_eval.errors import ConfigError


def test_a_results_folder_is_neither_in_the_store_nor_inside_another_results_folder(tmp_path):
    store, results = tmp_path / "embeddings", tmp_path / "results"
    run = results / "org__model" / "rev"
    (run / "qzhou_eval_records").mkdir(parents=True)
    (store / "0123456789abcdef0123").mkdir(parents=True)
    (store / "0123456789abcdef0123" / "a1.keys.npy").write_bytes(b"")
    for fine in (results, tmp_path / "new", tmp_path, store / "results"):
        check_results_place(fine, store)  # (a folder beside the configurations' is no harm)
    for inside in (store, store / "0123456789abcdef0123", store / "0123456789abcdef0123" / "r"):
        with pytest.raises(ConfigError, match=r"is in the embedding store \(runtime.store_dir="):
            check_results_place(inside, store)
    with pytest.raises(ConfigError, match=r"is one run's folder inside a results folder \(it "):
        check_results_place(run, store)
    with pytest.raises(ConfigError, match=r"is one model's folder inside a results folder"):
        check_results_place(run.parent, None)

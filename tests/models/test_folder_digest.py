"""The digest of a local model folder: what changes it and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from qzhou_eval.models import folder_digest
from qzhou_eval.models.folder_digest import covered, digest_of, folder_files, read_subfolders


def _folder(root: Path) -> Path:
    (root / "1_Pooling").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 8}')
    (root / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    return root


def test_every_file_counts_but_the_readme_and_hidden_ones(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m")
    files = folder_files(folder)
    assert sorted(files) == ["1_Pooling/config.json", "config.json", "model.safetensors"]
    before = digest_of(files)
    (folder / "README.md").write_text("# notes")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x").write_text("download metadata")
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs")
    assert digest_of(folder_files(folder)) == before
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert digest_of(folder_files(folder)) != before


def test_a_large_file_is_sampled_throughout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folder_digest, "_WHOLE_UP_TO", 1000)
    monkeypatch.setattr(folder_digest, "_SAMPLE", 100)
    monkeypatch.setattr(folder_digest, "_EVERY", 1000)
    path = tmp_path / "w.bin"
    data = bytearray(10_050)
    path.write_bytes(bytes(data))
    base = folder_digest._file_digest(path)
    for offset, changes in [(5, True), (4_050, True), (10_049, True), (500, False)]:
        changed = bytearray(data)
        changed[offset] = 1
        path.write_bytes(bytes(changed))
        assert (folder_digest._file_digest(path) != base) is changes, offset
    path.write_bytes(bytes(data) + b"\0")  # the size counts
    assert folder_digest._file_digest(path) != base


def test_only_the_subfolders_a_load_reads_count(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m")
    (folder / "modules.json").write_text(
        '[{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},'
        ' {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]'
    )
    (folder / "2_Dense").mkdir()
    (folder / "2_Dense" / "config.json").write_text('{"out_features": 4}')
    assert read_subfolders(folder) == ["1_Pooling"]
    assert read_subfolders(folder, projection="2_Dense") == ["1_Pooling", "2_Dense"]
    subfolders = read_subfolders(folder)
    before = digest_of(folder_files(folder, subfolders))
    # a trainer's checkpoints, this tool's own results and store (a run started in the folder)
    for other in ("checkpoint-500/model.safetensors", "results/a/b/T.json", "embeddings/x.npy"):
        (folder / other).parent.mkdir(parents=True, exist_ok=True)
        (folder / other).write_text("not read by a load")
    files = folder_files(folder, subfolders)
    assert digest_of(files) == before
    assert sorted(files) == [
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "modules.json",
    ]
    everything = folder_files(folder)
    assert "checkpoint-500/model.safetensors" in everything
    assert covered(everything, subfolders) == files  # (a record of every file, compared)
    (folder / "1_Pooling" / "extra.json").write_text("{}")  # a module's folder counts whole
    assert digest_of(folder_files(folder, subfolders)) != before
    (folder / "2_Dense" / "config.json").write_text('{"out_features": 8}')  # the projection's too
    assert "2_Dense/config.json" in folder_files(folder, read_subfolders(folder, "2_Dense"))


@pytest.mark.parametrize("modules", ["not json", '{"path": "x"}', '[{"path": 3}]'])
def test_an_unreadable_modules_json_counts_every_subfolder(tmp_path: Path, modules: str) -> None:
    folder = _folder(tmp_path / "m")
    (folder / "modules.json").write_text(modules)
    assert read_subfolders(folder) is None
    (folder / "checkpoint-1").mkdir()
    (folder / "checkpoint-1" / "w.bin").write_text("w")
    assert "checkpoint-1/w.bin" in folder_files(folder, read_subfolders(folder))


def test_a_folder_without_modules_json_is_read_at_its_top(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m")  # (a plain transformers folder: 1_Pooling is not read)
    assert read_subfolders(folder) == []
    assert sorted(folder_files(folder, [])) == ["config.json", "model.safetensors"]

"""The digest of a local model folder: what changes it and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from qzhou_eval.models import folder_digest
from qzhou_eval.models.folder_digest import digest_of, folder_files


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

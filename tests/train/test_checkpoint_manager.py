"""Checkpoint directory policy: atomic publish, latest pointer, keep-last-k, partial/corrupt detection."""

from __future__ import annotations

from pathlib import Path

from statex_dist.checkpoint import manager


def _write(root: Path, step: int, keep: int = 0) -> Path:
    tmp = manager.new_temp_dir(root, step)
    (tmp / "dcp").mkdir()
    (tmp / "dcp" / "shard.bin").write_bytes(b"x" * (100 + step))
    (tmp / "train_state.json").write_text("{}")
    return manager.publish(tmp, root, step, {"world": 1, "backend": "single"}, keep)


def test_publish_latest_and_keep_last(tmp_path):
    for step in (1, 2, 3, 4):
        _write(tmp_path, step, keep=2)
    assert [p.name for p in manager.list_checkpoints(tmp_path)] == ["step_00000004", "step_00000003"]
    assert (tmp_path / "latest").read_text().strip() == "step_00000004"
    assert manager.find_resume_checkpoint(tmp_path).name == "step_00000004"
    assert not list(tmp_path.glob(".tmp-*"))


def test_partial_and_truncated_checkpoints_are_skipped(tmp_path, capsys):
    for step in (1, 2, 3):
        _write(tmp_path, step)
    (tmp_path / "step_00000003" / "dcp" / "shard.bin").write_bytes(b"short")  # truncated
    (tmp_path / "step_00000002" / manager.MANIFEST).unlink()  # never finished
    assert "truncated" in manager.validate(tmp_path / "step_00000003")
    assert "COMPLETE" in manager.validate(tmp_path / "step_00000002")
    assert manager.find_resume_checkpoint(tmp_path).name == "step_00000001"
    out = capsys.readouterr().out
    assert "step_00000003 skipped" in out and "step_00000002 skipped" in out


def test_unpublished_temp_dir_is_ignored_and_cleaned(tmp_path):
    _write(tmp_path, 1)
    tmp = manager.new_temp_dir(tmp_path, 2)  # a save that was killed half-way
    (tmp / "junk").write_text("x")
    assert manager.find_resume_checkpoint(tmp_path).name == "step_00000001"
    manager.clean_temp_dirs(tmp_path)
    assert not tmp.exists()

"""`masklet.app.store`: projects, the ordered prompt log, RLE masks, verification marks and the
action log survive reopening the database; deleting an object or a project removes its rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from masklet.app.store import ProjectRow, PromptRow, Store
from masklet.io.rle import mask_to_rle, rle_to_mask


def _project(project_id: str = "p1") -> ProjectRow:
    return ProjectRow(project_id, "clip", "/videos/clip.mp4", False, 96, 80, 10.0, 6, 3, 1.0)


def _prompt(frame: int, obj_id: int, clear: bool = False) -> PromptRow:
    return PromptRow(0, frame, obj_id, [[10.0, 20.0]], [1], None, clear, 2.0)


def test_everything_written_is_there_after_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.add_project(_project())
    mask = np.zeros((80, 96), dtype=bool)
    mask[10:30, 5:40] = True
    first = store.add_prompt("p1", _prompt(0, 1), mask_to_rle(mask))
    second = store.add_prompt("p1", _prompt(3, 2), None)
    store.put_masks("p1", 4, {1: mask_to_rle(mask), 2: mask_to_rle(~mask)})
    store.verify("p1", 1, False, "leaks into the background")
    store.close()  # what a restart sees (each write was already committed)

    again = Store(tmp_path)
    assert again.projects() == [_project()]
    assert (first.seq, second.seq) == (1, 2)
    assert [(p.seq, p.frame, p.obj_id) for p in again.prompts("p1")] == [(1, 0, 1), (2, 3, 2)]
    assert again.object_ids("p1") == [1, 2]
    assert np.array_equal(rle_to_mask(again.masks("p1", 0)[1]), mask)
    assert sorted(again.all_masks("p1")) == [0, 4]
    assert again.verifications("p1")[1].reason == "leaks into the background"
    kinds = [action.kind for action in again.actions("p1")]
    assert kinds == ["create", "prompt", "prompt", "verify"]


def test_deleting_an_object_and_a_project(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.add_project(_project())
    store.add_prompt("p1", _prompt(0, 1), mask_to_rle(np.ones((80, 96), dtype=bool)))
    store.add_prompt("p1", _prompt(0, 2, clear=True), None)
    assert store.delete_object("p1", 1)
    assert not store.delete_object("p1", 1)
    assert [p.obj_id for p in store.prompts("p1")] == [2]
    assert store.masks("p1", 0) == {}
    assert store.delete_project("p1")
    assert store.project("p1") is None
    assert store.prompts("p1") == [] and store.actions("p1") == []

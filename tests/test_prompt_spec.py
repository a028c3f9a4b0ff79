"""`--prompt SPEC` and `--prompts FILE.json` parsing, merging and checks against a video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from masklet.cli.prompt_spec import (
    ObjectPrompt,
    check_prompt,
    load_mask,
    load_prompts_file,
    merge_prompts,
    parse_prompt_spec,
    prompt_palette,
)
from masklet.errors import InputError
from masklet.io.masks import voc_palette, write_indexed_png


def test_defaults_and_single_point() -> None:
    prompt = parse_prompt_spec("point=120:80")
    assert (prompt.frame, prompt.obj_id) == (0, 1)
    assert prompt.points == ((120.0, 80.0),) and prompt.labels == (1,)
    assert prompt.box is None and prompt.mask_path is None


def test_points_by_semicolon_repeated_keys_and_neg() -> None:
    prompt = parse_prompt_spec("frame=3, obj=2, point=1:2;3.5:4:0, point=5:6:1, neg=7:8")
    assert (prompt.frame, prompt.obj_id) == (3, 2)
    assert prompt.points == ((1, 2), (3.5, 4), (5, 6), (7, 8))
    assert prompt.labels == (1, 0, 1, 0)


def test_box_and_mask_with_label() -> None:
    assert parse_prompt_spec("obj=4,box=10:20:110:90").box == (10, 20, 110, 90)
    prompt = parse_prompt_spec("frame=5,obj=3,mask=a/b.png,label=7")
    assert prompt.mask_path == Path("a/b.png") and prompt.mask_label == 7


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("point", "not key=value"),
        ("frame=0,,point=1:2", "not key=value"),
        ("pont=1:2", "unknown key 'pont'"),
        ("point=1:x", "not a number"),
        ("point=1:2:3:4", "x:y or x:y:label"),
        ("point=1:2:5", "label must be 1"),
        ("point=nan:2", "not a finite number"),
        ("frame=-x,point=1:2", "whole number"),
        ("frame=1.5,point=1:2", "whole number"),
        ("frame=0,frame=1,point=1:2", "frame given twice"),
        ("box=10:20:5:90", "x0 < x1"),
        ("box=1:2:3", "x0:y0:x1:y1"),
        ("frame=0,obj=2", "object 2 has no prompt"),
        ("mask=m.png,point=1:2", "cannot be combined"),
        ("point=1:2,label=3", "give mask="),
    ],
)
def test_malformed_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        parse_prompt_spec(spec)
    assert "\n" not in str(error.value)


@given(
    st.lists(
        st.tuples(st.integers(0, 4000), st.integers(0, 4000), st.sampled_from([0, 1])),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
def test_formatted_points_parse_back(
    points: list[tuple[int, int, int]], frame: int, obj_id: int
) -> None:
    text = ";".join(f"{x / 4}:{y / 4}:{label}" for x, y, label in points)
    prompt = parse_prompt_spec(f"frame={frame},obj={obj_id},point={text}")
    assert prompt.frame == frame and prompt.obj_id == obj_id
    assert prompt.points == tuple((x / 4, y / 4) for x, y, _ in points)
    assert prompt.labels == tuple(label for _, _, label in points)


def test_prompts_file_list_and_object_forms(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    entries = [
        {"frame": 0, "obj": 1, "points": [[10, 20], [30, 40, 0]], "box": [1, 2, 50, 60]},
        {"frame": 2, "obj": 2, "mask": "masks/two.png", "label": 2},
    ]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(entries))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"prompts": entries}))
    for path in (listed, wrapped):
        first, second = load_prompts_file(path)
        assert first.points == ((10, 20), (30, 40)) and first.labels == (1, 0)
        assert first.box == (1, 2, 50, 60)
        assert second.mask_path == tmp_path / "masks" / "two.png" and second.mask_label == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty list"),
        ('{"prompts": 3}', "non-empty list"),
        ('[{"frame": 0, "pts": [[1, 2]]}]', "unknown key 'pts'"),
        ('[{"frame": 0, "obj": 3}]', "object 3 has no prompt"),
        ('[{"points": [1, 2]}]', "points must be a list"),
        ('[{"points": [[1, 2]], "frame": "x"}]', "whole number"),
        ('[{"box": "1,2,3,4"}]', "box must be"),
        ('["point=1:2"]', "must be an object"),
    ],
)
def test_bad_prompts_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prompts.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_prompts_file(path)


def test_missing_prompts_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="prompts file not found"):
        load_prompts_file(tmp_path / "nope.json")


def test_merge_adds_clicks_and_refuses_conflicts() -> None:
    merged = merge_prompts(
        [
            parse_prompt_spec("frame=1,obj=2,point=1:1"),
            parse_prompt_spec("frame=0,obj=1,box=0:0:5:5"),
            parse_prompt_spec("frame=1,obj=2,point=2:2:0"),
        ]
    )
    assert [(p.frame, p.obj_id) for p in merged] == [(0, 1), (1, 2)]
    assert merged[1].points == ((1, 1), (2, 2)) and merged[1].labels == (1, 0)
    with pytest.raises(InputError, match="two boxes"):
        merge_prompts([parse_prompt_spec("box=0:0:5:5"), parse_prompt_spec("box=1:1:5:5")])
    with pytest.raises(InputError, match="mask prompt and another"):
        merge_prompts([parse_prompt_spec("mask=m.png"), parse_prompt_spec("point=1:1")])


def test_checks_against_the_video(tmp_path: Path) -> None:
    check_prompt(parse_prompt_spec("frame=5,point=96:80"), 6, 80, 96)  # edges are inside
    with pytest.raises(InputError, match=r"frame 6 is out of range.*6 frames"):
        check_prompt(parse_prompt_spec("frame=6,point=1:1"), 6, 80, 96)
    with pytest.raises(InputError, match=r"point \(97, 10\) is outside the 96x80 frame"):
        check_prompt(parse_prompt_spec("point=97:10"), 6, 80, 96)
    with pytest.raises(InputError, match="outside"):
        check_prompt(parse_prompt_spec("box=0:0:10:81"), 6, 80, 96)
    with pytest.raises(InputError, match="mask file not found"):
        check_prompt(parse_prompt_spec(f"mask={tmp_path / 'nope.png'}"), 6, 80, 96)


def test_mask_files_label_selection_size_and_palette(tmp_path: Path) -> None:
    labels = np.zeros((80, 96), dtype=np.uint8)
    labels[10:20, 10:20] = 1
    labels[40:60, 50:70] = 2
    palette = voc_palette()
    palette[2] = (1, 2, 3)
    write_indexed_png(tmp_path / "labels.png", labels, palette)
    prompt = parse_prompt_spec(f"mask={tmp_path / 'labels.png'},label=2")
    assert np.array_equal(load_mask(prompt, 80, 96), labels == 2)
    whole = parse_prompt_spec(f"mask={tmp_path / 'labels.png'}")
    assert np.array_equal(load_mask(whole, 80, 96), labels > 0)
    kept = prompt_palette([parse_prompt_spec("point=1:1"), prompt])
    assert kept is not None and tuple(kept[2]) == (1, 2, 3)
    with pytest.raises(InputError, match="is 96x80, the video is 100x80"):
        load_mask(prompt, 80, 100)
    with pytest.raises(InputError, match="selects no pixel"):
        load_mask(parse_prompt_spec(f"mask={tmp_path / 'labels.png'},label=9"), 80, 96)
    Image.fromarray(np.zeros((80, 96, 3), np.uint8)).save(tmp_path / "rgb.png")
    rgb = ObjectPrompt(0, 1, mask_path=tmp_path / "rgb.png", origin="x")
    with pytest.raises(InputError, match="selects no pixel"):
        load_mask(rgb, 80, 96)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read mask"):
        load_mask(ObjectPrompt(0, 1, mask_path=tmp_path / "broken.png", origin="x"), 80, 96)

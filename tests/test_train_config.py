"""Training configs: every key is documented, the example files parse, overrides apply, and
bad values are named."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from masklet.errors import ConfigError
from masklet.train.config import (
    _SECTIONS,
    SourceSection,
    config_from_dict,
    read_config,
    with_overrides,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "training.md"
EXAMPLES = sorted((ROOT / "configs" / "train").glob("*.toml"))


def documented_keys() -> dict[str, set[str]]:
    """`{table: keys}` from the "Every key" tables of docs/training.md."""
    keys: dict[str, set[str]] = {}
    table = None
    for line in DOCS.read_text().splitlines():
        heading = re.match(r"### `\[(\w+)\]`", line)
        if heading:
            table = heading.group(1)
            keys[table] = set()
        row = re.match(r"\| `(\w+)` \|", line)
        if row and table:
            keys[table].add(row.group(1))
    return keys


def test_every_key_is_documented() -> None:
    documented = documented_keys()
    for table, section in _SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(section)}
        assert documented.get(table) == fields, table
    source_fields = {f.name for f in dataclasses.fields(SourceSection)}
    assert source_fields <= set(re.findall(r"`(\w+)`", DOCS.read_text()))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_parse(path: Path) -> None:
    config = read_config(path)
    assert config.data.sources
    assert config.to_dict()["model"]["preset"] == config.model.preset


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"davis-finetune-tiny.toml", "synthetic-scratch.toml"}


def test_overrides() -> None:
    config = config_from_dict({"data": {"sources": [{"kind": "davis", "path": "a"}]}})
    changed = with_overrides(config, init="x.pt", data="b", steps=7, out_dir="o")
    assert changed.model.init == "x.pt" and changed.data.sources[0].path == "b"
    assert changed.train.steps == 7 and changed.train.out_dir == "o"
    assert with_overrides(config) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"stepz": 1}}, "unknown key 'stepz' in [train]"),
        ({"optimiser": {}}, "unknown table [optimiser]"),
        ({"train": {"steps": 0}}, "[train] steps must be >= 1"),
        ({"train": {"steps": 1.5}}, "[train] steps must be int"),
        ({"model": {"preset": "sam3"}}, "unknown model preset 'sam3'"),
        ({"model": {"freeze": "image_encoder"}}, "[model] freeze must be a list"),
        ({"data": {"sources": [{"path": "x"}]}}, "kind"),
        ({"data": {"sources": [{"kind": "davis", "wieght": 2}]}}, "unknown key 'wieght'"),
        ({"optimizer": {"lr": -1.0}}, "lr"),
        ({"prompts": {"correction_clicks": -1}}, "correction_clicks"),
        ({"augment": {"hflip_prob": 2.0}}, "hflip_prob"),
        ({"loss": {"mask": "x"}}, "[loss] mask must be float"),
    ],
)
def test_bad_values_are_named(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(data)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config(bad)

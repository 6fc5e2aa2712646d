"""History mappings: the built-ins load, and every mistake in a mapping file is reported at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from baton.errors import ConfigError
from baton.model import Priority, Stage
from baton.signals.history_mapping import BUILTIN_MAPPINGS, load_mapping

MINIMAL = """\
source: acme
id: ticket
time: {column: at}
"""


def write(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("name", BUILTIN_MAPPINGS)
def test_builtin_mappings_load(name: str) -> None:
    mapping = load_mapping(name)
    assert mapping.name == name
    assert mapping.source == name
    assert mapping.doc.status is not None and mapping.doc.priority is not None


def test_the_bpic2013_mapping_orders_tiers_lowest_first() -> None:
    mapping = load_mapping("bpic2013")
    assert mapping.tiers == ("L1", "L2", "L3")
    assert mapping.doc.tier is not None and mapping.doc.tier.map is not None
    assert mapping.doc.tier.map["L2/L3"] == "L2"


def test_the_servicenow_mapping_reads_its_format() -> None:
    doc = load_mapping("servicenow").doc
    assert doc.empty == ("?",)
    assert doc.time.format == "%d/%m/%Y %H:%M" and doc.time.created == "opened_at"
    assert doc.status is not None and doc.status.map["Resolved"] is Stage.SOLVED
    assert doc.status.map["-100"] is None
    assert doc.priority is not None and doc.priority.map["1 - Critical"] is Priority.URGENT


def test_a_minimal_mapping_file(tmp_path: Path) -> None:
    mapping = load_mapping(str(write(tmp_path, MINIMAL)))
    assert mapping.name == "mapping"
    assert mapping.doc.time.format == "iso"
    assert mapping.tiers == ()
    assert set(mapping.columns()) == {"ticket", "at"}


def test_one_column_or_a_list() -> None:
    doc = load_mapping("bpic2013").doc
    assert doc.subject == ("Product",)


# Each case: a mapping file, and the located problems expected (each a substring of one line). As in
# policy files, a problem points at the key whose value is wrong.
BAD = [
    ("unknown field", MINIMAL + "colour: blue\n", ["mapping.yaml:4:1: unknown field 'colour'"]),
    ("missing id", "source: acme\ntime: {column: at}\n", ["mapping.yaml:1:1: missing field 'id'"]),
    (
        "bad source name",
        "source: Acme Corp\nid: t\ntime: {column: at}\n",
        ["mapping.yaml:1:1: 'Acme Corp' is not a valid source name"],
    ),
    (
        "status to no stage",
        MINIMAL + "status:\n  column: state\n  map: {Open: opened}\n",
        ["mapping.yaml:6:9: 'opened' is not one of"],
    ),
    (
        "priority to no priority",
        MINIMAL + "priority: {column: p, map: {P1: critical}}\n",
        ["mapping.yaml:4:29: 'critical' is not one of"],
    ),
    (
        "time format",
        "source: acme\nid: t\ntime: {column: at, format: day-month-year}\n",
        ["mapping.yaml:3:20: 'day-month-year' is neither \"iso\" nor a strptime pattern"],
    ),
    (
        "time zone",
        "source: acme\nid: t\ntime:\n  column: at\n  timezone: Mars/Olympus\n",
        ["mapping.yaml:5:3: unknown time zone 'Mars/Olympus'"],
    ),
    (
        "tier map without column",
        MINIMAL + "tier: {map: {L1: L1}}\n",
        ["mapping.yaml:4:1: missing field 'column'"],
    ),
    ("not a mapping", "- a\n- b\n", ["mapping.yaml:1:1: a mapping is a YAML mapping"]),
    ("invalid YAML", "source: [acme\n", ["mapping.yaml:2:1: invalid YAML"]),
    (
        "several at once",
        "source: acme\nid: t\ntime: {column: at}\nteam: 7\nkeep: {a: b}\n",
        [
            "mapping.yaml:4:1: Input should be a valid string",
            "mapping.yaml:5:1: Input should be a valid tuple",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=n) for n, t, e in BAD])
def test_invalid_mappings_are_reported_where_written(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(str(path))
    lines = str(caught.value).splitlines()
    for item in expected:
        needle = item.replace("mapping.yaml", str(path))
        assert any(needle in line for line in lines), f"{needle!r} not in {lines}"
    assert all(line.startswith(f"{path}:") for line in lines)


def test_an_unknown_name_lists_the_choices() -> None:
    with pytest.raises(
        ConfigError, match="unknown mapping 'zendesk': use bpic2013, servicenow or a YAML file"
    ):
        load_mapping("zendesk")


def test_a_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml:1:1: cannot read"):
        load_mapping(str(tmp_path / "missing.yaml"))


def test_columns_missing_from_the_file_are_located_in_the_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "team: group\nsubject: [title, summary]\n")
    mapping = load_mapping(str(path))
    problems = mapping.check_header(["ticket", "at", "title"])
    assert problems == [
        f"{path}:4:1: column 'group' is not in the file (its columns: ticket, at, title)",
        f"{path}:5:18: column 'summary' is not in the file (its columns: ticket, at, title)",
    ]
    assert mapping.check_header(["ticket", "at", "title", "summary", "group"]) == []

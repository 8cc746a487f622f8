"""`mp status`, `mp history` and the ITEM forms, on a reconciled real tree."""

from __future__ import annotations

import json
import sqlite3

import click
import pytest
from click.testing import CliRunner

from media_pipeline.cli import mp
from media_pipeline.items.names import ItemKey

LONG = ItemKey("movie", "A Very Long Title That Goes On And On Past Any Sensible Width (2001)")
SHOW = ItemKey("tv", "Lost", "S01 Disc1")
SHOW2 = ItemKey("tv", "Lost", "S01 Disc2")
NUMBERED = ItemKey("movie", "1917")


@pytest.fixture
def reconciled(sandbox):
    sandbox.mark(LONG, "1-ripped", "rip")
    sandbox.mark(SHOW, "2-remuxed", "rip", "remux")
    sandbox.mark(SHOW2, "1-ripped", "rip")
    sandbox.mark(NUMBERED, "3-transcoded", "transcode")
    sandbox.mp("reconcile")
    return sandbox


def test_status_table_groups_by_state_in_pipeline_order_within_80_columns(reconciled):
    text = reconciled.mp("status").stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    headers = [line for line in text.splitlines() if line.endswith(")") and " (" in line]
    assert headers == ["RIPPED (2)", "REMUXED (1)", "TRANSCODED (1)"]
    assert "4 items: 2 RIPPED, 1 REMUXED, 1 TRANSCODED" in text
    assert "…" in text  # the long title is cut, not wrapped


def test_status_json_has_the_documented_shape(reconciled):
    data = json.loads(reconciled.mp("status", "--json").stdout)
    assert data["counts"] == {"RIPPED": 2, "REMUXED": 1, "TRANSCODED": 1}
    required = {
        "id",
        "uid",
        "type",
        "title",
        "disc_label",
        "state",
        "folder_path",
        "pending_approval",
        "updated_at",
    }
    for item in data["items"]:
        assert required <= set(item)


def test_status_before_any_reconcile_says_what_to_do(sandbox):
    result = sandbox.mp("status")
    assert "run 'mp reconcile'" in result.stdout
    empty = {
        "items": [],
        "counts": {},
        "running_jobs": [],
        "drained_workers": [],
        "rejected": [],
        "rejected_total": 0,
        "seasons": [],
    }
    assert json.loads(sandbox.mp("status", "--json").stdout) == empty
    assert not sandbox.database.exists(), "looking must not create the database"


def test_item_can_be_named_every_documented_way(reconciled):
    items = {i["title"] + i["disc_label"]: i for i in reconciled.status_json()["items"]}
    show = items["LostS01 Disc1"]
    for form in (str(show["id"]), show["uid"], show["uid"][:6], "tv/Lost/S01 Disc1"):
        history = reconciled.mp("history", form).stdout
        assert history.startswith(f"tv/Lost/S01 Disc1  (id {show['id']}"), form
        assert "(new) -> REMUXED [auto] remux.done seen" in history
    # A title that is all digits is still reachable by type/title.
    assert reconciled.mp("history", "movie/1917").stdout.startswith("movie/1917")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ("tv/Lost", "no item matches 'tv/Lost'"),
        ("dvd/Lost", "must start with movie/ or tv/"),
        ("zzzz", "no item matches 'zzzz'"),
        ("99999", "no item has id 99999"),
        ("%", "no item matches '%'"),
    ],
)
def test_unknown_items_exit_2_with_one_sentence(reconciled, form, message):
    result = reconciled.mp("history", form, expect=2)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _give_uid(sandbox, old: str, new: str) -> None:
    with sqlite3.connect(sandbox.database) as db:
        db.execute("UPDATE media_items SET uid = ? WHERE uid = ?", (new, old))
        for table in ("state_transitions", "human_approvals", "jobs"):
            db.execute(f"UPDATE {table} SET item_uid = ? WHERE item_uid = ?", (new, old))


def test_an_ambiguous_uid_prefix_is_refused(reconciled):
    # uids are random, so two are given a shared start: a prefix of letters that two
    # items share must be refused (a prefix of digits alone is an id, so letters only).
    first, second = (i["uid"] for i in reconciled.status_json()["items"][:2])
    _give_uid(reconciled, first, "abc1" + first[4:])
    _give_uid(reconciled, second, "abc2" + second[4:])
    assert "matches" in reconciled.mp("history", "abc", expect=2).stderr
    assert "uid abc1" in reconciled.mp("history", "abc1").stdout  # one item: shown


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_has_help_text():
    for path, command in _commands(mp):
        assert command.help, f"mp {' '.join(path)} has no help"
        result = CliRunner().invoke(mp, [*path, "--help"])
        assert result.exit_code == 0
        assert command.help.split("\n")[0][:40] in result.stdout


def test_bare_approve_without_a_terminal_says_how_to_decide(sandbox):
    result = sandbox.mp("approve", expect=2)
    assert "mp approve ITEM --yes" in result.stderr and "--reject --reason" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""The pure state rules: furthest marker wins, stopped items remember where they stopped."""

import ast
import re
from pathlib import Path

from media_pipeline.pipeline import (
    GATES,
    JOB_KINDS,
    STAGE_FOLDERS,
    State,
    marker_state,
    parse_state,
    settle_state,
)


def test_furthest_marker_proves_the_state():
    assert marker_state(set()) is None
    assert marker_state({"rip"}) is State.RIPPED
    assert marker_state({"rip", "remux", "transcode"}) is State.TRANSCODED
    assert marker_state({"filebot"}) is State.IN_LIBRARY


def test_new_item_takes_the_proven_state():
    assert settle_state(None, None, State.REMUXED) == (State.REMUXED, None)
    assert settle_state(None, None, None) == (None, None)


def test_a_recorded_state_ahead_of_the_markers_stays():
    # A remux job is queued: the markers still only prove RIPPED.
    assert settle_state(State.REMUXING, None, State.RIPPED) == (State.REMUXING, None)


def test_a_marker_further_than_the_record_wins():
    assert settle_state(State.RIPPED, None, State.TRANSCODED) == (State.TRANSCODED, None)
    assert settle_state(State.FILING, None, State.IN_LIBRARY) == (State.IN_LIBRARY, None)


def test_stopped_items_stay_stopped_until_a_later_marker_appears():
    rejected = settle_state(State.REJECTED, State.REMUXED, State.REMUXED)
    assert rejected == (State.REJECTED, State.REMUXED)
    failed = settle_state(State.FAILED, State.TRANSCODING, State.REMUXED)
    assert failed == (State.FAILED, State.TRANSCODING)
    # The transcode was finished by hand: the marker is further than where it failed.
    assert settle_state(State.FAILED, State.TRANSCODING, State.TRANSCODED) == (
        State.TRANSCODED,
        None,
    )


def test_state_words_from_files_are_parsed_strictly():
    assert parse_state("REMUXED\n") is State.REMUXED
    assert parse_state("remuxed") is None
    assert parse_state("$(rm -rf /)") is None
    assert parse_state("") is None


def test_every_table_of_the_pipeline_comes_from_its_one_table():
    from media_pipeline import pipeline

    assert pipeline.JOB_KINDS == ("rip", "remux", "transcode", "filebot")
    assert pipeline.STAGE_FOLDERS == ("1-ripped", "2-remuxed", "3-transcoded")
    assert pipeline.NEXT_JOB[State.REMUXED] == ("transcode", "remux_review", State.TRANSCODING)
    assert pipeline.GATE_STATES == {
        "remux_review": State.REMUXED,
        "filebot_confirm": State.TRANSCODED,
    }
    assert pipeline.GATE_STAGES == {"remux_review": "2-remuxed", "filebot_confirm": "3-transcoded"}
    assert pipeline.REVERT[State.FILING] is State.TRANSCODED
    assert pipeline.RETRY_TARGET[State.RIPPING] is State.RIPPING
    assert pipeline.RETRY_TARGET[State.REMUXED] is State.REMUXED
    assert pipeline.REDO[State.REMUXED] == ("2-remuxed", State.RIPPED)
    assert [kind for kind, _state in pipeline.MARKER_STATES] == [
        "filebot",
        "transcode",
        "remux",
        "rip",
    ]


def test_a_stage_added_as_one_row_reaches_every_derived_table():
    """Adding a stage is one row: rebuild the tables from a pipeline with a sixth step
    (a subtitle pass after the transcode) and see it everywhere."""
    import importlib.abc
    import importlib.util

    from media_pipeline import pipeline

    spec = importlib.util.find_spec("media_pipeline.pipeline")
    assert spec is not None and isinstance(spec.loader, importlib.abc.InspectLoader)
    source = spec.loader.get_source("media_pipeline.pipeline")
    assert source is not None
    row = 'Stage("transcode", "2-remuxed", "3-transcoded",'
    assert row in source
    namespace: dict = {"__name__": "pipeline_with_a_new_stage"}
    extended = source.replace(
        '    Stage("filebot", "3-transcoded",',
        '    Stage("subtitle", "3-transcoded", "4-subtitled", State.FILING, State.FILING, None),\n'
        '    Stage("filebot", "4-subtitled",',
    )
    exec(compile(extended, "pipeline_with_a_new_stage", "exec"), namespace)
    assert "subtitle" in namespace["JOB_KINDS"]
    assert namespace["STAGE_FOLDERS"][-1] == "4-subtitled"
    assert namespace["GATE_STAGES"]["filebot_confirm"] == "4-subtitled"
    assert pipeline.GATE_STAGES["filebot_confirm"] == "3-transcoded"  # the real one unchanged
    # What the rest of the package asks the table: a season's episodes are counted in the
    # new folder too (library/seasons.py), filing reads it, and the gates keep their parts.
    assert namespace["EPISODE_FOLDERS"] == ("2-remuxed", "3-transcoded", "4-subtitled")
    assert namespace["FILING_STAGE"].reads == "4-subtitled"
    assert namespace["DESTINATION_GATE"] == "filebot_confirm"
    assert namespace["REVIEW_GATE"] == "remux_review"
    assert namespace["DISC_STAGE"].kind == "rip"
    assert namespace["BY_KIND"]["subtitle"].timeout_hours == 12  # the default
    assert not namespace["BY_KIND"]["subtitle"].from_disc
    assert not namespace["BY_KIND"]["subtitle"].into_library
    assert pipeline.EPISODE_FOLDERS == ("2-remuxed", "3-transcoded")


def test_each_stage_and_gate_is_asked_for_by_what_it_does():
    from media_pipeline import pipeline

    assert pipeline.DISC_STAGE.kind == "rip" and pipeline.DISC_STAGE.from_disc
    assert pipeline.SORT_STAGE.kind == "remux"
    assert pipeline.ENCODE_STAGE.kind == "transcode"
    assert pipeline.FILING_STAGE.kind == "filebot" and pipeline.FILING_STAGE.into_library
    assert [stage.kind for stage in pipeline.PIPELINE if stage.from_disc] == ["rip"]
    assert [stage.kind for stage in pipeline.PIPELINE if stage.into_library] == ["filebot"]
    assert (pipeline.REVIEW_GATE, pipeline.DESTINATION_GATE) == ("remux_review", "filebot_confirm")
    assert pipeline.EPISODE_FOLDERS == ("2-remuxed", "3-transcoded")
    assert [stage.timeout_hours for stage in pipeline.PIPELINE] == [12, 12, 72, 6]


PACKAGE = Path(__file__).resolve().parents[2] / "src" / "media_pipeline"
# What only pipeline.py may spell: the stages' kinds, the gates and the stage folders.
PIPELINE_NAMES = frozenset((*JOB_KINDS, *GATES, *STAGE_FOLDERS))
# Of those, the ones that are never a word of prose: inside any string of code they are
# the name spelled out (a message names a gate through the table: f"at {REVIEW_GATE}").
# A kind is a word too ("queue a rip job"), so only a string that is one is caught.
NEVER_WORDS = re.compile(
    "|".join(rf"(?<![\w-]){re.escape(name)}(?![\w-])" for name in (*GATES, *STAGE_FOLDERS))
)


def names_spelled(source: str) -> list[tuple[int, str]]:
    """(line, string) of each string in source's code that spells a stage, a gate or a
    stage folder: a string (or an f-string's text) that is one, or that holds a gate's
    or a folder's name. Docstrings and comments may name them."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and (node.value in PIPELINE_NAMES or NEVER_WORDS.search(node.value))
    )


def test_the_names_the_check_catches_and_those_it_leaves():
    planted = (
        '''"""A module about the rip, whose docstring may say filebot_confirm."""\n'''
        "def f(kind, gate, folder):\n"
        '''    """Files a filebot job from 3-transcoded."""\n'''
        "    # a comment may say remux_review\n"
        """    print(f"the rip of {kind} is queued")\n"""
        """    if kind == "filebot":\n"""
        """        return f"{gate}: at filebot_confirm"\n"""
        """    return f"rip{kind}", folder in ("2-remuxed",), "WHERE gate = 'remux_review'"\n"""
    )
    assert names_spelled(planted) == [
        (6, "filebot"),
        (7, ": at filebot_confirm"),
        (8, "2-remuxed"),
        (8, "WHERE gate = 'remux_review'"),
        (8, "rip"),
    ]


def test_no_module_but_the_pipeline_spells_a_stage_or_a_gate():
    """A branch on a stage's or a gate's name is a property of its row (`from_disc`,
    `into_library`, `FILING_STAGE`, `DESTINATION_GATE`, ...): a stage added as one row
    then reaches every module, and none is left silently wrong."""
    spelled = {
        f"{path.relative_to(PACKAGE)}:{line}": text
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "pipeline.py"
        for line, text in names_spelled(path.read_text(encoding="utf-8"))
    }
    assert spelled == {}, "ask pipeline.py's table for these instead"


def test_the_kinds_before_a_workers_kinds_are_what_it_lingers_for():
    from media_pipeline.pipeline import upstream_kinds

    assert upstream_kinds(["rip"]) == set()
    assert upstream_kinds(["remux"]) == {"rip"}
    assert upstream_kinds(["transcode", "filebot"]) == {"rip", "remux", "transcode"}

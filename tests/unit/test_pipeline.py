"""The pure state rules: furthest marker wins, stopped items remember where they stopped."""

from media_pipeline.pipeline import State, marker_state, parse_state, settle_state


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


def test_the_kinds_before_a_workers_kinds_are_what_it_lingers_for():
    from media_pipeline.pipeline import upstream_kinds

    assert upstream_kinds(["rip"]) == set()
    assert upstream_kinds(["remux"]) == {"rip"}
    assert upstream_kinds(["transcode", "filebot"]) == {"rip", "remux", "transcode"}

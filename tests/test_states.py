"""The pure state rules: furthest marker wins, stopped items remember where they stopped."""

from media_pipeline.states import State, marker_state, parse_state, settle_state


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

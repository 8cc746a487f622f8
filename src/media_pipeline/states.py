"""Item states and the pure rules that move between them (DESIGN section 5)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    RIPPING = "RIPPING"
    RIPPED = "RIPPED"
    REMUXING = "REMUXING"
    REMUXED = "REMUXED"
    TRANSCODING = "TRANSCODING"
    TRANSCODED = "TRANSCODED"
    FILING = "FILING"
    IN_LIBRARY = "IN_LIBRARY"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


# The pipeline's order; a state's index is how far along the item is.
PROGRESS = (
    State.RIPPING,
    State.RIPPED,
    State.REMUXING,
    State.REMUXED,
    State.TRANSCODING,
    State.TRANSCODED,
    State.FILING,
    State.IN_LIBRARY,
)
# States where the item stopped before the end; they remember the state they stopped in.
STOPPED = (State.FAILED, State.REJECTED, State.CANCELLED)
# The order `mp status` lists states in.
DISPLAY_ORDER = PROGRESS + STOPPED

# marker name -> the state its presence proves, furthest first.
MARKER_STATES = (
    ("filebot", State.IN_LIBRARY),
    ("transcode", State.TRANSCODED),
    ("remux", State.REMUXED),
    ("rip", State.RIPPED),
)

TRIGGERS = ("auto", "manual", "approval")


def parse_state(word: str | None) -> State | None:
    """A state from a `.pipeline/state` file, or None if the word is not one."""
    if not word:
        return None
    try:
        return State(word.strip())
    except ValueError:
        return None


def progress(state: State, stopped_in: State | None = None) -> int:
    """How far along the pipeline a state is; a stopped item counts where it stopped."""
    if state in STOPPED:
        return PROGRESS.index(stopped_in) if stopped_in in PROGRESS else -1
    return PROGRESS.index(state)


def marker_state(done_markers: set[str] | frozenset[str]) -> State | None:
    """The state proven by the furthest `.done` marker present, if any."""
    for marker, state in MARKER_STATES:
        if marker in done_markers:
            return state
    return None


def settle_state(
    recorded: State | None, stopped_in: State | None, proven: State | None
) -> tuple[State | None, State | None]:
    """Furthest marker wins: the state an item is in, given what was recorded and what the
    markers prove. Returns (state, stopped_in)."""
    if recorded is None:
        return proven, None
    if proven is not None and progress(proven) > progress(recorded, stopped_in):
        return proven, None
    return recorded, stopped_in if recorded in STOPPED else None

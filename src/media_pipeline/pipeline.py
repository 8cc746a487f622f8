"""Item states and the pure rules that move between them (DESIGN section 5)."""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import NamedTuple


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


class Stage(NamedTuple):
    """One step of the pipeline: the job that does it, and all that follows from it.
    Code asks the row what a stage does (`from_disc`, `into_library`, `sorts_files`,
    `encodes`), never its kind: a stage's name is written here alone."""

    kind: str  # the job kind, and its marker's name: <kind>.done
    reads: str | None  # the stage folder its input is in (None: a disc)
    writes: str | None  # the stage folder its output goes to (None: the library)
    running: State  # the item's state while its job is queued or running
    done: State  # the state its marker proves
    gate: str | None  # the approval it waits for once its input is there
    marks_input: bool = False  # its marker goes beside its input (filing moves the output)
    # It sorts a disc's titles into the item's media files (a movie and its extras, a
    # season's episodes): the files a person gives roles at the next stage's gate, and
    # from its output on, the folders a disc's episodes are counted in.
    sorts_files: bool = False
    # It encodes: its workers give way to Plex (units.transcode_nice), `mp stats` shows
    # what it saved.
    encodes: bool = False
    # How long its script may run when the config names no timeout_seconds.
    timeout_hours: int = 12

    @property
    def from_disc(self) -> bool:
        """It reads a drive: its job may name one, a ripper's key may sign it, only the
        worker of the host with the disc claims it, and an item comes back from it."""
        return self.reads is None

    @property
    def into_library(self) -> bool:
        """It files into the library: its job carries a destination (and maybe a file
        list), its outputs are the places filed, and its marker goes beside its input."""
        return self.writes is None


# The pipeline, in order: every other table of stages, states, gates and markers below is
# derived from this one, so adding a stage is adding a row.
PIPELINE = (
    Stage("rip", None, "1-ripped", State.RIPPING, State.RIPPED, None),
    Stage("remux", "1-ripped", "2-remuxed", State.REMUXING, State.REMUXED, None,
          sorts_files=True),
    Stage("transcode", "2-remuxed", "3-transcoded", State.TRANSCODING, State.TRANSCODED,
          "remux_review", encodes=True, timeout_hours=72),
    Stage("filebot", "3-transcoded", None, State.FILING, State.IN_LIBRARY, "filebot_confirm",
          marks_input=True, timeout_hours=6),
)  # fmt: skip
_STEPS = tuple(itertools.pairwise(PIPELINE))  # (a stage, the stage after it)

JOB_KINDS = tuple(stage.kind for stage in PIPELINE)
BY_KIND = {stage.kind: stage for stage in PIPELINE}
GATES = tuple(stage.gate for stage in PIPELINE if stage.gate is not None)
# Stage folders under staging_root, in pipeline order.
STAGE_FOLDERS = tuple(stage.writes for stage in PIPELINE if stage.writes is not None)
# The pipeline's order; a state's index is how far along the item is.
PROGRESS = tuple(state for stage in PIPELINE for state in (stage.running, stage.done))
# job kind -> the state an item is in while that job is queued or running
KIND_STATES = {stage.kind: stage.running for stage in PIPELINE}
RUNNING_KINDS = {stage.running: stage.kind for stage in PIPELINE}
# an item's state -> (the next job's kind, the gate before it, its running state)
NEXT_JOB = {before.done: (stage.kind, stage.gate, stage.running) for before, stage in _STEPS}


def upstream_kinds(kinds: tuple[str, ...] | list[str]) -> set[str]:
    """The kinds of the jobs an item runs before it comes to one of kinds (a rip and a
    remux come before a transcode)."""
    last = max((JOB_KINDS.index(kind) for kind in kinds if kind in JOB_KINDS), default=0)
    return set(JOB_KINDS[:last])


# job kind -> the state an item is in before that job is queued
BEFORE_KIND = {stage.kind: before.done for before, stage in _STEPS}
# a job's running state -> the state an item goes back to when the job vanished
REVERT = {stage.running: before.done for before, stage in _STEPS}
# gate -> the state an item waits in for it, and the stage folder its decision file is in
GATE_STATES: dict[str, State] = {
    stage.gate: before.done for before, stage in _STEPS if stage.gate is not None
}
GATE_STAGES: dict[str, str] = {
    stage.gate: stage.reads
    for stage in PIPELINE
    if stage.gate is not None and stage.reads is not None
}
# Where a stopped item goes back to: the state before its last job, or its gate.
RETRY_TARGET = {
    PIPELINE[0].running: PIPELINE[0].running,
    **REVERT,
    **{state: state for state in GATE_STATES.values()},
}
# For an item rejected at a gate: (the stage folder of the rejected output, the state
# that queues the job that makes it again).
REDO: dict[State, tuple[str, State]] = {
    made.done: (made.writes, before.done)
    for before, made, gated in zip(PIPELINE, PIPELINE[1:], PIPELINE[2:], strict=False)
    if gated.gate is not None and made.writes is not None
}


def _the_stage(what: str, stages: list[Stage]) -> Stage:
    if len(stages) != 1:
        raise ValueError(f"PIPELINE must have one stage that {what}, not {len(stages)}")
    return stages[0]


def _gate_of(stage: Stage, what: str) -> str:
    if stage.gate is None:
        raise ValueError(f"PIPELINE's {stage.kind} stage needs a gate: {what}")
    return stage.gate


# The stages code asks for by what they do, each the one row that says so.
DISC_STAGE = _the_stage("starts from a disc", [stage for stage in PIPELINE if stage.from_disc])
SORT_STAGE = _the_stage("sorts files", [stage for stage in PIPELINE if stage.sorts_files])
ENCODE_STAGE = _the_stage("encodes", [stage for stage in PIPELINE if stage.encodes])
FILING_STAGE = _the_stage(
    "files into the library", [stage for stage in PIPELINE if stage.into_library]
)
# The gate after the sorting: it shows what that job said, sets the files' roles first,
# and a season's episodes are settled once past it.
REVIEW_GATE = _gate_of(PIPELINE[PIPELINE.index(SORT_STAGE) + 1], "the review of its files")
# The gate before filing: it shows where the item goes in the library and decides it;
# roles set there are the last word, and its files are the ones filed.
DESTINATION_GATE = _gate_of(FILING_STAGE, "the destination's confirmation")
# The stage folders a disc's media files are in once sorted, up to filing (which empties
# the last).
EPISODE_FOLDERS = STAGE_FOLDERS[STAGE_FOLDERS.index(SORT_STAGE.writes or "") :]
# States where the item stopped before the end; they remember the state they stopped in.
STOPPED = (State.FAILED, State.REJECTED, State.CANCELLED)
# The order `mp status` lists states in.
DISPLAY_ORDER = PROGRESS + STOPPED
# marker name -> the state its presence proves, furthest first.
MARKER_STATES = tuple((stage.kind, stage.done) for stage in reversed(PIPELINE))


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

"""Hostile input, fuzzed: config values, marker files and job specs from the share.
Whatever they hold: no traceback, no execution outside the configured scripts, no path
outside the roots."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import yaml
from click.testing import CliRunner
from conftest import AS_ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_pipeline.cli import mp
from media_pipeline.config.load import parse_config
from media_pipeline.errors import ConfigError
from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.queue import Queue
from media_pipeline.jobs.spec import build_spec
from media_pipeline.share.identity import ensure_share

FILM = ItemKey("movie", "Film")

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["/mnt/x", "rel/path", "{title}", "$(reboot)", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "staging_root",
    "library_root",
    "database",
    "queue_dir",
    "workers",
    "scripts",
    "gates",
    "jobs",
    "windows",
    "notify",
    "lock_timeout_seconds",
    "surprise",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=8))
def test_any_config_is_accepted_or_refused_with_config_errors(data):
    try:
        parse_config(data, "fuzz.yaml")
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) and p for p in error.problems)


@FUZZ
@given(
    state=st.binary(max_size=64),
    metadata=st.one_of(st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode())),
    approval=st.one_of(st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode())),
)
def test_any_marker_content_is_survived(state, metadata, approval):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = root / "staging" / "2-remuxed" / "movies" / "Film" / ".pipeline"
        folder.mkdir(parents=True)
        (folder / "remux.done").touch()
        (folder / "state").write_bytes(state)
        (folder / "metadata.json").write_bytes(metadata)
        (folder / "approval.remux_review.json").write_bytes(approval)
        config = root / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "staging_root": str(root / "staging"),
                    "library_root": str(root / "library"),
                    "database": str(root / "db" / "s.db"),
                    "units": AS_ROOT,
                }
            )
        )
        runner = CliRunner()
        for command in (["reconcile"], ["status", "--json"], ["approve", "--list", "--json"]):
            result = runner.invoke(mp, [*command, "--config", str(config)])
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                command,
                result.exception,
            )
            assert result.exit_code == 0, (command, result.output)
        items = json.loads(runner.invoke(mp, ["status", "--json", "--config", str(config)]).stdout)[
            "items"
        ]
        assert [i["title"] for i in items] == ["Film"]


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "kind",
                "item",
                "input_dir",
                "output_dir",
                "destination",
                "priority",
                "attempts",
                "max_attempts",
                "created_at",
                "not_before",
                "script",
                "args",
            ]
        ),
        st.one_of(
            values,
            st.sampled_from(["/etc", "/", "../../..", "/tmp/x/../../etc", "remux", "transcode"]),
        ),
        max_size=4,
    )
)
def test_any_spec_runs_nothing_outside_the_roots(pipeline, changes):
    config = pipeline.config
    ensure_share(config)  # what the controller's first reconcile does
    queue = Queue(config.queue_dir)
    shutil.rmtree(config.queue_dir, ignore_errors=True)
    pipeline.mark(FILM, "1-ripped", "rip")
    spec = build_spec(config, "remux", FILM, priority=0, now=datetime.now(UTC))
    spec.update(changes)
    # The name is what the claimer trusts to choose; the spec is what it must check.
    name = build_spec(config, "remux", FILM, priority=0, now=datetime.now(UTC))["id"]
    folder = Path(queue.folder("pending", name))
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(spec))
    result = CliRunner().invoke(
        mp, ["claim", "--worker", "w1", "--config", str(pipeline.config_path)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    assert not queue.names("pending") or result.exit_code == 0
    roots = (os.path.realpath(pipeline.staging), os.path.realpath(pipeline.root / "library"))
    for args_file in pipeline.root.glob("args.*"):
        for argument in args_file.read_text().splitlines():
            real = os.path.realpath(argument)
            assert any(real == r or real.startswith(r + os.sep) for r in roots), argument
        args_file.unlink()

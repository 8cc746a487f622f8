"""Config: the schema's checks, its example, and the CLI's handling of bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from media_pipeline.cli import mp
from media_pipeline.config.hosts import DEFAULT_SCRIPT_ARGS, ScriptSpec
from media_pipeline.config.load import load_config, parse_config
from media_pipeline.config.output import example_yaml
from media_pipeline.config.schema import SCHEMA
from media_pipeline.config.settings import Config
from media_pipeline.errors import ConfigError

MINIMAL = {"staging_root": "/mnt/staging", "library_root": "/mnt/library"}


def script(config: Config, kind: str, item_type: str) -> ScriptSpec:
    """The script the config names for a kind and type, where the test expects one."""
    found = config.script_for(kind, item_type)
    assert found is not None, f"no script for {kind} on {item_type}"
    return found


def problems_of(data) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "conf.yaml")
    return caught.value.problems


def test_minimal_config_gets_the_documented_defaults():
    config = parse_config(dict(MINIMAL), "conf.yaml")
    assert config.database == "/var/lib/media-pipeline/state.db"
    assert config.queue_dir == "/mnt/staging/.pipeline/jobs"
    assert config.gates == ("remux_review", "filebot_confirm")
    assert config.jobs.heartbeat_seconds == 30
    assert config.jobs.stale_after_seconds == 300
    assert config.jobs.max_attempts == 3
    assert config.jobs.retention_days == 30
    assert config.workers["ct304"].kinds == ("transcode", "filebot")
    assert script(config, "remux", "tv").path.endswith("organize-and-remux-tv.sh")
    assert script(config, "transcode", "movie").args == DEFAULT_SCRIPT_ARGS
    assert script(config, "rip", "movie").args == ("{output_dir}", "{title}")


def test_every_problem_is_reported_at_once_with_its_key():
    problems = problems_of(
        {
            "staging_root": "relative/path",
            "library_rot": "/mnt/library",
            "jobs": {"max_attempts": 0, "heartbeat_seconds": "often"},
            "gates": ["remux_review", "bogus"],
        }
    )
    text = "\n".join(problems)
    assert "key 'staging_root' must be an absolute path" in text
    assert "unknown key 'library_rot' (did you mean 'library_root'?)" in text
    assert "key 'library_root' is missing" in text
    assert "key 'jobs.max_attempts'" in text
    assert "key 'jobs.heartbeat_seconds'" in text
    assert "unknown gate(s) 'bogus'" in text
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("scripts", "expected"),
    [
        ({"rip": {"path": "rip.sh"}}, "key 'scripts.rip.path' must be an absolute path"),
        ({"rip": {"path": "/x", "args": ["{nope}"]}}, "key 'scripts.rip.args[0]' uses '{nope}'"),
        (
            {"rip": {"path": "/x", "args": ["{title.__class__}"]}},
            "key 'scripts.rip.args[0]' uses '{title.__class__}'",
        ),
        ({"rip": {"path": "/x", "args": "{title}"}}, "key 'scripts.rip.args' must be a list"),
        ({"remux": {"movie": {"path": "/x"}, "dvd": {}}}, "unknown key 'scripts.remux.dvd'"),
        ({"encode": {"path": "/x"}}, "unknown key 'scripts.encode'"),
        ({"rip": {"args": []}}, "key 'scripts.rip.path' is missing"),
    ],
)
def test_script_entries_are_checked(scripts, expected):
    assert any(expected in problem for problem in problems_of({**MINIMAL, "scripts": scripts}))


def test_workers_must_name_known_kinds_with_scripts():
    problems = problems_of({**MINIMAL, "workers": {"ct302": {"kinds": ["rip", "burn"]}}})
    assert problems == [
        "key 'workers.ct302.kinds' must be a list of job kinds from rip, remux, transcode, filebot"
    ]
    problems = problems_of(
        {**MINIMAL, "workers": {"ct302": {"kinds": ["rip"]}}, "scripts": {"remux": "/r.sh"}}
    )
    assert problems == ["key 'workers.ct302.kinds' names 'rip', which has no script"]


def test_booleans_are_not_numbers():
    assert problems_of({**MINIMAL, "jobs": {"max_attempts": True}}) == [
        "key 'jobs.max_attempts' must be a whole number of at least 1, got True"
    ]


def test_database_on_the_share_is_refused():
    problems = problems_of({**MINIMAL, "database": "/mnt/staging/state.db"})
    assert "inside staging_root" in problems[0]


@pytest.mark.parametrize("root", ["/mnt/staging", "/mnt/library"])
@pytest.mark.parametrize("key", ["signing_key", "trusted_keys"])
def test_job_keys_on_the_share_are_refused(root, key):
    """Whoever can write the share must not write a key that signs jobs, nor the list
    of keys a host trusts: the library is on the share as much as staging."""
    (problem,) = problems_of({**MINIMAL, key: f"{root}/keys/{key}"})
    root_key = "staging_root" if root == "/mnt/staging" else "library_root"
    assert problem.startswith(
        f"key '{key}' ({root}/keys/{key}) is inside {root_key}, on the share; "
        "keep it on this host's local disk: whoever"
    )


def test_job_keys_default_beside_the_database():
    config = parse_config({**MINIMAL, "database": "/var/lib/mp/state.db"}, "c.yaml")
    assert (config.signing_key, config.trusted_keys) == (
        "/var/lib/mp/job.key",
        "/var/lib/mp/trusted_keys",
    )


def test_a_spec_lifetime_longer_than_retention_is_refused():
    problems = problems_of({**MINIMAL, "jobs": {"spec_lifetime_days": 31}})
    assert problems == ["key 'jobs.spec_lifetime_days' (31) must be at most retention_days (30)"]


def test_one_script_for_both_types_and_per_type_scripts():
    config = parse_config(
        {
            **MINIMAL,
            "scripts": {
                "remux": {"movie": "/m.sh", "tv": {"path": "/t.sh"}},
                "rip": "/rip.sh",
                "transcode": "/t",
                "filebot": "/f",
            },
        },
        "c",
    )
    assert script(config, "remux", "movie").path == "/m.sh"
    assert script(config, "remux", "tv").path == "/t.sh"
    assert script(config, "rip", "tv").path == "/rip.sh"


def test_example_is_generated_from_the_schema_and_passes_validation(tmp_path):
    text = example_yaml()
    assert text.count("\n# ") > 10, "the example explains its settings"
    path = tmp_path / "example.yaml"
    path.write_text(text)
    config = load_config(str(path))
    assert config.staging_root == "/mnt/staging"
    result = CliRunner().invoke(mp, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: valid" in result.stdout
    # This machine has no /mnt/staging: a warning, not an error.
    assert "warning: key 'staging_root'" in result.stderr


def test_cli_example_output_equals_the_generator():
    result = CliRunner().invoke(mp, ["config", "example"])
    assert result.exit_code == 0
    assert result.stdout == example_yaml()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("staging_root: [unclosed\n", "is not valid YAML (line 2"),
        ("- just\n- a list\n", "must be a YAML mapping of settings, not a list"),
        ("staging_root: /s\nlibrary_root: /l\nworkers: 5\n", "key 'workers' must be a mapping"),
    ],
)
def test_bad_files_exit_2_with_one_clear_message(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    for command in (["config", "validate"], ["reconcile"], ["status"]):
        result = CliRunner().invoke(mp, [*command, "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"mp: {path}: ")
        assert expected in result.stderr
        assert "Traceback" not in result.output


def test_missing_config_file_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MP_CONFIG", raising=False)
    result = CliRunner().invoke(mp, ["status", "--config", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr and "mp config example" in result.stderr


def test_mp_config_environment_variable_is_used(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "database": str(tmp_path / "s.db")}))
    monkeypatch.setenv("MP_CONFIG", str(path))
    result = CliRunner().invoke(mp, ["config", "validate"])
    assert result.exit_code == 0
    assert str(path) in result.stdout


def test_the_configuration_reference_is_made_from_the_schema():
    """docs/configuration.md is what `make docs` writes from SCHEMA: a setting added,
    changed or documented anew without it fails here."""
    from media_pipeline.config.output import reference_markdown

    reference = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    text = reference_markdown()
    assert reference.read_text() == text, "docs/configuration.md is stale: run 'make docs'"
    # Every setting, nested ones by their dotted key, is there with its help text.
    for setting in SCHEMA:
        assert f"`{setting.key}`" in text and setting.help in text
        for child in setting.children:
            assert f"`{setting.key}.{child.key}`" in text and child.help in text

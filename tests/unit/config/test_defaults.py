"""Each default is written once, in SCHEMA: the settings classes take theirs from it.

A default written in a class and again in the schema would drift apart: `mp config
example` and the reference would say one thing and a Config made in code another."""

from __future__ import annotations

import ast
from pathlib import Path

from media_pipeline.config import settings
from media_pipeline.config.checks import REQUIRED, checked_default
from media_pipeline.config.schema import SCHEMA

# Each settings class and the block of SCHEMA it holds ("" for the top level).
BLOCKS = {"Config": "", "JobSettings": "jobs", "UnitSettings": "units", "NotifySettings": "notify"}
# Defaults that are the class's own, not the schema's.
CLASS_ONLY = {
    # The schema has none (parse_config puts the file beside the database); a Config
    # made in code has none either.
    "Config.signing_key",
    "Config.trusted_keys",
}


def schema_setting(path: str):
    settings_of, found = SCHEMA, None
    for name in path.split("."):
        found = next(setting for setting in settings_of if setting.key == name)
        settings_of = found.children
    return found


def written_twice(source: str) -> list[str]:
    """Each field default in the settings classes of source that is not taken from the
    schema: not default("<its dotted key>"), nor its block's own class."""
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.ClassDef) and node.name in BLOCKS):
            continue
        for statement in node.body:
            if not (isinstance(statement, ast.AnnAssign) and statement.value is not None):
                continue
            field = ast.unparse(statement.target)
            path = f"{BLOCKS[node.name]}.{field}".lstrip(".")
            value = statement.value
            from_schema = (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and (
                    (
                        value.func.id == "default"
                        and len(value.args) == 1
                        and ast.unparse(value.args[0]) == repr(path)
                    )
                    or (value.func.id in BLOCKS and BLOCKS[value.func.id] == path)
                )
            )
            if not from_schema and f"{node.name}.{field}" not in CLASS_ONLY:
                found.append(
                    f"{node.name}.{field} = {ast.unparse(value)}: take it from the schema, "
                    f"default({path!r})"
                )
    return found


def test_no_settings_class_writes_a_default_of_its_own():
    assert written_twice(Path(settings.__file__).read_text()) == []


def test_a_default_written_twice_is_found():
    source = (
        "class JobSettings(NamedTuple):\n"
        "    heartbeat_seconds: int = 30\n"
        '    stale_after_seconds: int = default("jobs.heartbeat_seconds")\n'
        '    max_attempts: int = default("jobs.max_attempts")\n'
        "class Config(NamedTuple):\n"
        "    units: UnitSettings = JobSettings()\n"
        "    jobs: JobSettings = JobSettings()\n"
    )
    assert written_twice(source) == [
        "JobSettings.heartbeat_seconds = 30: take it from the schema, "
        "default('jobs.heartbeat_seconds')",
        "JobSettings.stale_after_seconds = default('jobs.heartbeat_seconds'): take it from "
        "the schema, default('jobs.stale_after_seconds')",
        "Config.units = JobSettings(): take it from the schema, default('units')",
    ]


def test_each_block_class_holds_its_blocks_settings_and_their_defaults():
    for class_name, block in BLOCKS.items():
        if not block:
            continue
        holder = getattr(settings, class_name)
        children = schema_setting(block).children
        assert set(holder._fields) == {child.key for child in children}, class_name
        for child in children:
            assert child.default is not REQUIRED, f"{block}.{child.key}"
            expected = checked_default(child, f"{block}.{child.key}", [])
            assert holder._field_defaults[child.key] == expected, f"{block}.{child.key}"


def test_a_config_made_in_code_has_the_files_defaults():
    """Its blocks are their classes' defaults, checked above."""
    for field, value in settings.Config._field_defaults.items():
        setting = schema_setting(field)
        if f"Config.{field}" not in CLASS_ONLY and not setting.children:
            assert value == checked_default(setting, field, []), field

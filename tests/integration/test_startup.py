"""Start-up cost: what each command imports. `mp claim` runs every 30 s on every worker;
it must not pay for the database layer, and only interactive approve loads questionary."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from media_pipeline.cli import mp
try:
    mp(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in
      ('sqlite_utils', 'questionary', 'prompt_toolkit', 'tabulate', 'filelock'))))
"""


def loaded(pipeline, *args) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--config", str(pipeline.config_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.split(".")[0] for name in json.loads(run.stdout.splitlines()[-1])}


def test_claim_on_an_empty_queue_loads_no_database_or_prompt_code(pipeline):
    assert loaded(pipeline, "claim", "--worker", "w1") == set()


def test_controller_commands_do_not_load_questionary(pipeline):
    for command in (["reconcile"], ["dispatch"], ["status"], ["approve", "--list"]):
        modules = loaded(pipeline, *command)
        assert "questionary" not in modules and "prompt_toolkit" not in modules, command
        assert "sqlite_utils" in modules, command  # they do use the database

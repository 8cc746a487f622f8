"""A job's script writes only below its item's own folders (worker/confine.py): a folder
of the item swapped for a link on the share while the script runs leads nowhere it can
write, and neither do the other items' folders or the rest of the library.

The sandbox lives outside /tmp here: /tmp and /var/tmp stay writable to every script
(under the units they are the unit's own, PrivateTmp=yes), so roots below them would
show nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import make_sandbox, tree_snapshot
from hostile import jobs_dir

from media_pipeline.items.names import ItemKey
from media_pipeline.worker import landlock

HONEST = ItemKey("movie", "Heat (1995)")
OTHER = ItemKey("movie", "Ronin (1998)")

# A remux stand-in that tries, once the test says go, each place a script could write,
# by name as scripts do, and notes in its own output folder what it was let do.
TRYING = r"""#!/usr/bin/env bash
set -u
out=$MP_OUTPUT_DIR
note() { printf '%s %s\n' "$1" "$2" >> "$out/.tries"; }
attempt() {  # attempt NAME COMMAND...: whether the kernel let the command write
  local said
  if said=$("${@:2}" 2>&1); then note "$1" allowed
  elif [[ $said == *"Permission denied"* ]]; then note "$1" refused
  else note "$1" "failed:${said// /_}"; fi
}
mkdir -p "$out" && touch "$out/.ready"
while [ ! -e "$MP_INPUT_DIR/go" ]; do sleep 0.05; done
attempt own-output sh -c 'echo video > "$0/title.out"' "$out"
attempt own-input sh -c 'echo note > "$0/remux.note"' "$MP_INPUT_DIR"
attempt temp sh -c 'f=$(mktemp) && echo x > "$f" && rm "$f"'
attempt dev-null sh -c 'echo x > /dev/null'
attempt other-item sh -c 'echo stolen > "$0/stolen.mkv"' "$MP_TEST_OTHER"
attempt library sh -c 'echo planted > "$0/planted.mkv"' "$MP_TEST_LIBRARY"
attempt swapped sh -c 'echo through > "$0/through.mkv"' "$MP_TEST_SWAPPED"
attempt shared-memory sh -c 'echo x > "$0" && rm "$0"' "/dev/shm/mp-test-$$"
attempt device sh -c 'echo x > /dev/full'
mkdir -p "$out/.pipeline" && touch "$out/.pipeline/remux.done"
"""

needs_landlock = pytest.mark.skipif(
    landlock.unavailable() is not None, reason=f"{landlock.unavailable()}"
)


@pytest.fixture
def outside_tmp():
    """A folder for the sandbox and the decoy that no script may write by default."""
    base = Path.home() / ".cache" / "media-pipeline-tests"
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=base)).resolve()
    for allowed in ("/tmp", "/var/tmp", "/dev"):
        assert not root.is_relative_to(allowed), f"{root} is below {allowed}"
    yield root
    shutil.rmtree(root)


def confined_pipeline(root: Path):
    box = make_sandbox(root / "sandbox")
    scripts = root / "sandbox" / "scripts"
    scripts.mkdir()
    for kind in ("rip", "remux", "transcode", "filebot"):
        (scripts / f"{kind}.sh").write_text(TRYING)
        (scripts / f"{kind}.sh").chmod(0o755)
    box.scripts = scripts
    box.write_pipeline_config(script_writable_paths=[])  # only the item's own folders
    return box


def remux_running(box, env: dict) -> tuple[subprocess.Popen, Path, Path]:
    """The honest item's remux claimed by a real `mp claim`, its script waiting to be
    told to go: (the worker, the item's input folder, its output folder)."""
    box.mark(HONEST, "1-ripped", "rip")
    box.mp("reconcile")
    box.mp("dispatch")
    box.mark(OTHER, "1-ripped", "rip")  # another item's folder, its job not yet queued
    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("mp")), "claim", "--worker", "w1",
         "--config", str(box.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    staged = Path(box.folder(HONEST, "1-ripped"))
    output = Path(box.folder(HONEST, "2-remuxed"))
    deadline = time.monotonic() + 30
    while not (output / ".ready").exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            out, err = worker.communicate()
            pytest.fail(f"the script never started: {out} {err}")
        time.sleep(0.02)
    return worker, staged, output


def tries(output: Path) -> dict[str, str]:
    return dict(line.split() for line in (output / ".tries").read_text().splitlines())


@needs_landlock
def test_a_script_writes_its_own_folders_and_no_other_item_s(outside_tmp):
    """Honest work goes on: the script writes its output and input folders, a temporary
    file and /dev/null; another item's folder and the library are refused, though the
    worker itself may write both."""
    box = confined_pipeline(outside_tmp)
    library = box.root / "library" / "Movies" / "Ronin (1998)"
    library.mkdir(parents=True)
    other = Path(box.folder(OTHER, "1-ripped"))
    env = {
        "MP_TEST_OTHER": str(other),
        "MP_TEST_LIBRARY": str(library),
        "MP_TEST_SWAPPED": str(other),
    }
    worker, staged, output = remux_running(box, env)
    before = tree_snapshot(other, library)
    (staged / "go").touch()
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, out + err
    assert tries(output) == {
        "own-output": "allowed",
        "own-input": "allowed",
        "temp": "allowed",
        "dev-null": "allowed",
        "other-item": "refused",
        "library": "refused",
        "swapped": "refused",
        "shared-memory": "allowed",
        # Each device a script writes by name is allowed, not the rest of /dev (where a
        # link planted in its folder could lead to a disk): /dev/full refuses the open.
        "device": "refused",
    }
    assert (output / "title.out").read_text() == "video\n"
    assert tree_snapshot(other, library) == before
    assert (
        "may write outside its item's folders"
        not in (jobs_dir(box) / "completed").joinpath(box.queue("completed")[0], "log").read_text()
    )


@needs_landlock
def test_an_output_folder_swapped_for_a_link_while_the_script_runs_leads_nowhere(outside_tmp):
    """A share writer swaps the item's output folder for a link to a folder outside the
    roots while its script runs; the script, writing by the folder's name, is refused
    there: nothing outside changes. The item's own folder, set aside, is untouched too."""
    box = confined_pipeline(outside_tmp)
    decoy = outside_tmp / "decoy" / "home" / ".ssh"
    decoy.mkdir(parents=True)
    (decoy / "authorized_keys").write_text("ssh-ed25519 AAAA owner\n")
    before = tree_snapshot(outside_tmp / "decoy")
    env = {name: str(decoy) for name in ("MP_TEST_OTHER", "MP_TEST_LIBRARY", "MP_TEST_SWAPPED")}
    worker, staged, output = remux_running(box, env)
    aside = output.with_name(output.name + ".aside")
    output.rename(aside)
    output.symlink_to(decoy)
    (staged / "go").touch()
    out, err = worker.communicate(timeout=60)
    assert tree_snapshot(outside_tmp / "decoy") == before, "the script wrote outside the roots"
    assert not (aside / "title.out").exists() and not (aside / ".tries").exists()
    assert "Traceback" not in out + err

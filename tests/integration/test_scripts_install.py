"""`mp scripts install` run again after an upgrade: a script still as mp wrote it is
updated, one the owner changed is kept and this version's written beside it, and a
run with nothing to do writes nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from click.testing import CliRunner

from media_pipeline.cli import mp
from media_pipeline.setup.scripts import MANIFEST, packaged_scripts

SHIPPED = sorted(path.name for path in packaged_scripts().glob("*.sh"))
OLD = b"#!/bin/bash\n# an earlier version of this script\n"


def install(dest: Path) -> str:
    result = CliRunner().invoke(mp, ["scripts", "install", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    return result.output


def snapshot(dest: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns)
            for path in dest.iterdir() if not path.is_symlink()}  # fmt: skip


def kept(said: str) -> list[str]:
    """The scripts an install says it left as they were."""
    line = said.split("left as they were (not as mp wrote them): ", 1)[1]
    return line.split(";", 1)[0].split(", ")


def shipped(name: str) -> bytes:
    return (packaged_scripts() / name).read_bytes()


def test_a_second_install_with_nothing_to_do_writes_nothing(tmp_path):
    dest = tmp_path / "scripts"
    assert install(dest).startswith(f"{len(SHIPPED)} reference scripts copied")
    for name in SHIPPED:
        assert (dest / name).read_bytes() == shipped(name) and os.access(dest / name, os.X_OK)
    before = snapshot(dest)
    assert install(dest).startswith("0 reference scripts copied")
    assert snapshot(dest) == before


def test_a_script_as_an_earlier_version_wrote_it_is_updated(tmp_path):
    dest = tmp_path / "scripts"
    install(dest)
    # What an earlier version left: its own script, and its digest in the manifest.
    name = SHIPPED[0]
    (dest / name).write_bytes(OLD)
    manifest = (dest / MANIFEST).read_text()
    old_digest = hashlib.sha256(shipped(name)).hexdigest()
    new_digest = hashlib.sha256(OLD).hexdigest()
    (dest / MANIFEST).write_text(manifest.replace(f"{old_digest}  {name}", f"{new_digest}  {name}"))
    said = install(dest)
    assert said.startswith("1 reference scripts copied") and "1 of them updated" in said, said
    assert (dest / name).read_bytes() == shipped(name)
    assert os.access(dest / name, os.X_OK) and not (dest / f"{name}.new").exists()


def test_a_script_the_owner_changed_is_kept_with_this_version_beside_it(tmp_path):
    dest = tmp_path / "scripts"
    install(dest)
    name = "rip-disc.sh"
    (dest / name).write_bytes(b"#!/bin/bash\n# the owner's own\n")
    said = install(dest)
    assert said.startswith("0 reference scripts copied"), said
    assert kept(said) == [name]
    assert (dest / name).read_bytes() == b"#!/bin/bash\n# the owner's own\n"
    assert (dest / f"{name}.new").read_bytes() == shipped(name)
    before = snapshot(dest)
    install(dest)
    assert snapshot(dest) == before, "the same .new is not written again"


def test_scripts_from_before_the_manifest_are_kept_unless_the_same(tmp_path):
    dest = tmp_path / "scripts"
    dest.mkdir()
    (dest / SHIPPED[0]).write_bytes(OLD)  # nobody can tell whose this is
    (dest / SHIPPED[1]).write_bytes(shipped(SHIPPED[1]))
    said = install(dest)
    assert kept(said) == [SHIPPED[0]], said
    assert (dest / SHIPPED[0]).read_bytes() == OLD
    assert f"{len(SHIPPED) - 2} reference scripts copied" in said


def test_links_in_the_folder_are_never_followed(tmp_path):
    dest, elsewhere = tmp_path / "scripts", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.write_bytes(b"not to be touched\n")
    (dest / SHIPPED[0]).symlink_to(elsewhere)
    (dest / MANIFEST).symlink_to(elsewhere)
    said = install(dest)
    assert kept(said) == [SHIPPED[0]], said
    assert elsewhere.read_bytes() == b"not to be touched\n"
    assert (dest / SHIPPED[0]).is_symlink() and not (dest / MANIFEST).is_symlink()

"""systemd units: generated once, installed with this installation's paths, verified by
systemd-analyze; and the reference scripts pass shellcheck."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from media_pipeline.setup.timers import (
    UDEV_RULE_NAME,
    UnitPaths,
    render_udev_rule,
    render_units,
)

REPO = Path(__file__).resolve().parents[2]
# What timers/ in the repository holds: the units for the documented default paths.
REFERENCE_PATHS = UnitPaths(
    mp="/usr/local/bin/mp",
    config="/etc/media-pipeline/config.yaml",
    staging_root="/mnt/staging",
    library_root="/mnt/library",
    queue_dir="/mnt/staging/.pipeline/jobs",
    database_folder="/var/lib/media-pipeline",
)


def test_the_repository_timers_folder_is_the_generated_reference():
    units = {**render_units(REFERENCE_PATHS), UDEV_RULE_NAME: render_udev_rule()}
    on_disk = {path.name: path.read_text() for path in (REPO / "timers").iterdir()}
    assert on_disk == units


def test_units_are_oneshot_and_count_from_the_end_of_the_last_run():
    units = render_units(REFERENCE_PATHS)
    for name, text in units.items():
        if name.endswith(".service"):
            assert "Type=oneshot" in text and "RequiresMountsFor=/mnt/staging" in text
            assert "ProtectSystem=strict" in text and "SyslogIdentifier=" in text
        else:
            assert "OnUnitInactiveSec=" in text and "OnUnitActiveSec" not in text
            assert "AccuracySec=1s" in text and "RandomizedDelaySec=" in text
    assert "OnUnitInactiveSec=15s" in units["mp-claim@.timer"]
    assert "OnUnitInactiveSec=15s" in units["mp-reconcile.timer"]
    assert "reconcile --if-changed --dispatch" in units["mp-reconcile.service"]
    assert "RuntimeDirectoryPreserve=yes" in units["mp-reconcile.service"]
    assert "claim --worker %i" in units["mp-claim@.service"]


def test_install_writes_units_for_this_installation(pipeline):
    dest = pipeline.root / "units"
    result = pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "w1", "--controller")
    mp = str(Path(sys.executable).with_name("mp"))
    service = (dest / "mp-claim@.service").read_text()
    assert f"ExecStart={mp} claim --worker %i --linger 300 --config {pipeline.config_path}" in (
        service
    )
    assert f"ReadWritePaths=-{pipeline.staging}" in service
    assert (
        "systemctl enable --now mp-reconcile.timer mp-dispatch.timer mp-claim@w1.timer"
        in result.stdout
    )
    user = pipeline.mp(
        "timers",
        "install",
        "--dest",
        str(pipeline.root / "user"),
        "--user",
        "--no-controller",
        "--worker",
        "w1",
    )
    assert "systemctl --user enable --now mp-claim@w1.timer" in user.stdout
    assert "ProtectSystem" not in (pipeline.root / "user" / "mp-claim@.service").read_text()
    unknown = pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "nope", expect=2)
    assert "worker 'nope' is not under 'workers'" in unknown.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_installed_units_pass_systemd_analyze_verify(pipeline):
    dest = pipeline.root / "units"
    pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "w1", "--controller")
    # A template is verified as an instance, the way systemd would start it.
    for suffix in ("service", "timer"):
        shutil.copy(dest / f"mp-claim@.{suffix}", dest / f"mp-claim@w1.{suffix}")
    shutil.copy(dest / "mp-rip@.service", dest / "mp-rip@sr0.service")
    units = [
        str(p)
        for p in sorted(dest.iterdir())
        if "@." not in p.name and p.is_file() and p.suffix in (".service", ".timer")
    ]
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    # Unknown keys are only warnings to systemd; here they are failures.
    assert run.stderr.strip() == "", run.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_reference_scripts_pass_shellcheck():
    scripts = sorted(str(path) for path in (REPO / "scripts").glob("*.sh"))
    assert len(scripts) == 6
    run = subprocess.run(
        ["shellcheck", "-x", *scripts], capture_output=True, text=True, cwd=REPO / "scripts"
    )
    assert run.returncode == 0, run.stdout


def test_reference_scripts_end_with_the_three_marker_lines():
    for name, marker in (
        ("rip-disc.sh", "rip"),
        ("organize-and-remux-movie.sh", "remux"),
        ("organize-and-remux-tv.sh", "remux"),
        ("transcode-queue.sh", "transcode"),
        ("filebot-process.sh", "filebot"),
    ):
        tail = (REPO / "scripts" / name).read_text().strip().splitlines()[-3:]
        assert tail[0].startswith("mkdir -p -- ") and tail[0].endswith('/.pipeline"')
        assert tail[1].startswith("touch -- ") and tail[1].endswith(f'/.pipeline/{marker}.done"')
        assert tail[2].startswith("date -Iseconds > ")
        assert tail[2].endswith(f'/.pipeline/{marker}.timestamp"')


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_every_system_unit_scores_at_most_2_5(pipeline):
    """`systemd-analyze security --offline=true`: 0 is a locked-down service, 10 one
    running as root with everything open (where the units started, at 9.0)."""
    pipeline.write_pipeline_config(units={"user": "media", "group": "media"})  # the default
    dest = pipeline.root / "units"
    pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "w1", "--controller")
    shutil.copy(dest / "mp-claim@.service", dest / "mp-claim@w1.service")
    shutil.copy(dest / "mp-rip@.service", dest / "mp-rip@sr0.service")
    scores = {}
    for name in (
        "mp-reconcile.service",
        "mp-dispatch.service",
        "mp-claim@w1.service",
        "mp-rip@sr0.service",
    ):
        run = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--no-pager", name],
            capture_output=True, text=True, cwd=dest, timeout=60,
        )  # fmt: skip
        last = run.stdout.strip().splitlines()[-1]
        scores[name] = float(last.split("level for")[1].split(":")[1].split()[0])
    assert all(score <= 2.5 for score in scores.values()), scores
    print(scores)  # for the record: pytest -s shows them
    claim = (dest / "mp-claim@.service").read_text()
    assert "User=media" in claim and "DeviceAllow=block-sr rw" in claim
    assert "Documentation=" in claim


def test_a_transcoding_worker_gets_a_low_priority_drop_in(pipeline):
    pipeline.write_pipeline_config(
        workers={"ct302": {"kinds": ["rip"]}, "ct304": {"kinds": ["transcode", "filebot"]}},
        units={"transcode_nice": 15, "transcode_io_class": "best-effort"},
    )
    dest = pipeline.root / "units"
    pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "ct304")
    drop_in = (dest / "mp-claim@ct304.service.d" / "50-priority.conf").read_text()
    assert "Nice=15" in drop_in and "IOSchedulingClass=best-effort" in drop_in
    assert not (dest / "mp-claim@ct302.service.d").exists(), "the ripper keeps its priority"
    pipeline.write_pipeline_config(units={"user": "Media Man", "transcode_nice": 40})
    err = pipeline.mp("config", "validate", expect=2).stderr
    assert "key 'units.user' must be a user or group name" in err
    assert "key 'units.transcode_nice' must be a nice level from 0 to 19" in err


@pytest.mark.skipif(not shutil.which("man"), reason="man not installed")
def test_the_manual_page_lists_every_command(tmp_path):
    from media_pipeline.cli import mp
    from media_pipeline.setup.manual import command_paths, render_manual

    page = tmp_path / "mp.1"
    page.write_text(render_manual(mp))
    shown = subprocess.run(
        ["man", "-P", "cat", "-l", str(page)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": ""},
        check=True,
    )
    assert shown.stderr == ""
    headings = {line.strip() for line in shown.stdout.splitlines()}
    paths = command_paths(mp)
    assert {"mp reconcile", "mp notify test", "mp timers install"} <= set(paths)
    for path in paths:
        assert any(heading.startswith(f"{path} [OPTIONS]") for heading in headings), path
    assert "--man-dest DIR" in shown.stdout and "EXIT STATUS" in shown.stdout
    if shutil.which("groff"):
        checked = subprocess.run(
            ["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True
        )
        assert checked.returncode == 0 and checked.stderr == "", checked.stderr


@pytest.mark.skipif(
    not (shutil.which("systemd-analyze") and shutil.which("man")),
    reason="systemd-analyze or man not installed",
)
def test_installed_units_name_only_documentation_that_exists(pipeline):
    dest = pipeline.root / "units"
    man = pipeline.root / "man"
    pipeline.mp(
        "timers", "install", "--dest", str(dest), "--man-dest", str(man / "man1"),
        "--worker", "w1", "--controller",
    )  # fmt: skip
    assert (man / "man1" / "mp.1").is_file()
    env = {**os.environ, "MANPATH": str(man)}
    found = subprocess.run(["man", "-w", "mp"], capture_output=True, text=True, env=env)
    assert found.stdout.strip() == str(man / "man1" / "mp.1")
    units = [str(dest / name) for name in ("mp-reconcile.timer", "mp-dispatch.timer")]
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=yes", *units],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    for text in (p.read_text() for p in dest.iterdir() if p.suffix in (".service", ".timer")):
        assert "Documentation=man:mp(1)\n" in text
    # Installed again, the same page: nothing to rewrite.
    again = pipeline.mp(
        "timers", "install", "--dest", str(dest), "--man-dest", str(man / "man1"),
        "--worker", "w1", "--controller",
    )  # fmt: skip
    assert f"unchanged {man / 'man1' / 'mp.1'}" in again.stdout


def test_with_dest_the_manual_page_goes_beside_the_units(pipeline):
    dest = pipeline.root / "units"
    pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "w1", "--controller")
    assert (dest / "mp.1").read_text().splitlines()[1].startswith(".TH MP 1")


def test_a_manual_page_mp_did_not_write_is_left_alone_and_no_link_is_followed(pipeline):
    """Another mp.1 where the page goes is not replaced (one sentence, exit 2); a link
    there is not written through; a page mp wrote is replaced whole, readable by all."""
    man = pipeline.root / "man"
    man.mkdir()
    foreign = man / "mp.1"
    foreign.write_text(".TH MP 1 (the page of another mp)\n")
    install = ("timers", "install", "--dest", str(pipeline.root / "units"), "--man-dest",
               str(man), "--worker", "w1")  # fmt: skip
    result = pipeline.mp(*install, expect=2)
    assert "holds a page mp did not write" in result.stderr, result.stderr
    assert foreign.read_text() == ".TH MP 1 (the page of another mp)\n"
    target = pipeline.root / "elsewhere.txt"
    target.write_text("not a manual page\n")
    foreign.unlink()
    foreign.symlink_to(target)
    result = pipeline.mp(*install, expect=2)
    assert "is a link" in result.stderr and target.read_text() == "not a manual page\n"
    foreign.unlink()
    pipeline.mp(*install)
    assert foreign.stat().st_mode & 0o777 == 0o644 and not foreign.is_symlink()

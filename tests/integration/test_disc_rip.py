"""A disc put into a drive queues its rip: `mp rip --device` as mp-rip@srN runs it, with
udev's properties given by a stand-in `udevadm` (there is no drive here), on the ripper
(no database: the controller takes the item in from the queue) and on the controller."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import item_row, refused_by_worker, signed_by_controller
from hostile import claim_refuses, controller_signer, jobs_dir, live_file, runs_of

from media_pipeline.config.hosts import host_name
from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.live import FRESH_SECONDS
from media_pipeline.jobs.signature import signed_live
from media_pipeline.setup.timers import render_udev_rule

MP = str(Path(sys.executable).with_name("mp"))
DVD = {"ID_CDROM_MEDIA": "1", "ID_CDROM_MEDIA_DVD": "1", "ID_FS_TYPE": "udf"}


@pytest.fixture
def drive(tmp_path, monkeypatch):
    """A stand-in udevadm on PATH that answers `info --query=property --name=/dev/srN`
    with the properties in drive/<srN> (a missing file: no such device), and a stand-in
    eject that notes its arguments in drive/ejected and opens the tray (the disc's
    properties go), or fails as a stuck drive does while drive/stuck exists."""
    folder = tmp_path / "drive"
    folder.mkdir()
    udevadm = folder / "udevadm"
    udevadm.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2" = "info --query=property" ] || exit 64\n'
        'name="${3#--name=/dev/}"\n'
        f'[ -f "{folder}/$name" ] || {{ echo "Unknown device" >&2; exit 1; }}\n'
        f'cat "{folder}/$name"\n'
    )
    eject = folder / "eject"
    eject.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{folder}/ejected"\n'
        f'[ -f "{folder}/stuck" ] && {{ echo "eject: unable to eject, last error: '
        'Inappropriate ioctl for device" >&2; exit 1; }\n'
        f'rm -f "{folder}/${{1#/dev/}}"\n'
    )
    for program in (udevadm, eject):
        program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")

    def insert(label: str, device: str = "sr0", **more: str) -> None:
        properties = {**DVD, "ID_FS_LABEL": label, **more}
        (folder / device).write_text("".join(f"{k}={v}\n" for k, v in properties.items()))

    return insert


@pytest.fixture
def ripper(pipeline):
    """The ripper's config: the same share, and a database that lives on another host."""
    pipeline.mp("reconcile")  # the controller sets the share up
    settings = yaml.safe_load(pipeline.config_path.read_text())
    settings["database"] = str(pipeline.root / "controller-only" / "state.db")
    path = pipeline.root / "ripper.yaml"
    path.write_text(yaml.safe_dump(settings))
    trust_ripper(pipeline, path)
    return path


def trust_ripper(pipeline, ripper_config: Path) -> str:
    """docs/install.md's out-of-band step: the ripper's `mp keys show` line, run on the
    controller. Returns the ripper's key."""
    shown = subprocess.run(
        [MP, "keys", "show", "--config", str(ripper_config)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    command = shown.stdout.strip().splitlines()[-1].split()
    assert command[:3] == ["mp", "keys", "trust"] and command[3] != "controller"
    pipeline.mp(*command[1:])
    return command[4]


def rip_device(config: Path, device: str = "/dev/sr0", *more: str):
    """`mp rip --device` as the rip unit written for worker w1 runs it."""
    return subprocess.run(
        [MP, "rip", "--device", device, "--worker", "w1", *more, "--config", str(config)],
        capture_output=True, text=True,
    )  # fmt: skip


def test_a_disc_in_the_ripper_is_queued_and_the_controller_takes_it_in(pipeline, drive, ripper):
    drive("SEINFELD_S3_D2")
    done = rip_device(ripper)
    assert done.returncode == 0, done.stderr
    assert "DVD 'SEINFELD_S3_D2' in /dev/sr0: queued job_" in done.stdout
    (job_id,) = pipeline.queue("pending")
    assert "_rip_tv_" in job_id
    pipeline.mp("reconcile")
    (item,) = pipeline.status_json()["items"]
    assert (item["type"], item["title"], item["disc_label"]) == ("tv", "Seinfeld", "S03 Disc2")
    assert item["state"] == "RIPPING"
    pipeline.mp("claim", "--worker", "w1")
    env = (pipeline.root / f"env.{job_id}").read_text()
    assert "MP_DEVICE=/dev/sr0" in env.splitlines()
    assert "MP_ITEM_TITLE=Seinfeld" in env.splitlines()


def test_a_disc_seen_twice_queues_one_rip(pipeline, drive, ripper):
    drive("THE_MATRIX")
    first, second = rip_device(ripper), rip_device(ripper)
    assert first.returncode == second.returncode == 0, second.stderr
    assert "The Matrix is queued already" in second.stdout
    assert len(pipeline.queue("pending")) == 1
    # Udev's events for one disc arrive together: two commands at once, one job.
    drive("HEAT", "sr1")
    together = [
        subprocess.Popen([MP, "rip", "--device", "/dev/sr1", "--worker", "w1", "--config", ripper],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=60) for process in together]
    assert all(process.returncode == 0 for process in together), outputs
    assert sum("queued job_" in out for out, _err in outputs) == 1, outputs
    assert len(pipeline.queue("pending")) == 2
    # Ripped and back in the drive: nothing queued, and what to do instead.
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("claim", "--worker", "w1")
    again = rip_device(ripper)
    assert "The Matrix is ripped already" in again.stdout and "'mp forget'" in again.stdout
    assert pipeline.queue("pending") == []


def test_one_label_in_two_drives_at_once_and_a_nameless_disc_seen_again(pipeline, drive, ripper):
    drive("BOXSET", "sr0")
    drive("BOXSET", "sr1")
    together = [
        subprocess.Popen([MP, "rip", "--device", device, "--worker", "w1", "--config", ripper],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for device in ("/dev/sr0", "/dev/sr1", "/dev/sr0", "/dev/sr1")
    ]  # fmt: skip
    outputs = [process.communicate(timeout=60) for process in together]
    assert sum("queued job_" in out for out, _err in outputs) == 1, outputs
    # A disc with no label and no id gets a title with the minute in it; seen again a
    # minute later it is still the disc in that drive, whose rip is queued.
    drive("DVD_VIDEO", "sr2")
    first = rip_device(ripper, "/dev/sr2")
    assert "queued job_" in first.stdout
    pending = pipeline.staging / ".pipeline" / "jobs" / "pending"
    job = next(n for n in pipeline.queue("pending") if "Unlabelled" in n)
    parts = job.split("_")
    parts[5] = "0123456789ab"  # the item of a minute before: another title, another uid
    (pending / job).rename(pending / "_".join(parts))
    again = rip_device(ripper, "/dev/sr2")
    assert "is queued already" in again.stdout, again.stdout + again.stderr
    assert len([n for n in pipeline.queue("pending") if "Unlabelled" in n]) == 1


def test_on_the_controller_the_item_is_tracked_at_once(pipeline, drive):
    pipeline.mp("reconcile")
    drive("GONE_WITH_THE_WIND", ID_CDROM_MEDIA_DVD="", ID_CDROM_MEDIA_BD="1")
    done = rip_device(pipeline.config_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("BD 'GONE_WITH_THE_WIND' in /dev/sr0: queued job_")
    (item,) = pipeline.status_json()["items"]
    assert (item["title"], item["state"]) == ("Gone with the Wind", "RIPPING")
    spec = json.loads(
        next((pipeline.staging / ".pipeline" / "jobs" / "pending").glob("*/spec.json")).read_text()
    )
    assert spec["device"] == "/dev/sr0"


def test_a_dry_run_queues_nothing(pipeline, drive, ripper):
    drive("THE_MATRIX")
    done = rip_device(ripper, "/dev/sr0", "--dry-run")
    assert done.stdout.strip().endswith("would queue a rip job for movie/The Matrix")
    assert pipeline.queue("pending") == []


@pytest.mark.parametrize(
    ("device", "properties", "sentence"),
    [
        ("/dev/sda", None, "--device /dev/sda is not an optical drive (/dev/srN)"),
        ("/dev/sr0", {"ID_CDROM_MEDIA_DVD": "1"}, "no disc in /dev/sr0"),
        ("/dev/sr0", {"ID_CDROM_MEDIA": "1", "ID_CDROM_MEDIA_CD": "1"}, "neither a DVD nor"),
        ("/dev/sr9", None, "udevadm knows no device /dev/sr9"),
    ],
)
def test_what_is_not_a_video_disc_is_refused_in_one_sentence(
    pipeline, drive, ripper, tmp_path, device, properties, sentence
):
    if properties is not None:
        lines = "".join(f"{key}={value}\n" for key, value in properties.items())
        (tmp_path / "drive" / "sr0").write_text(lines)
    done = rip_device(ripper, device)
    assert done.returncode == 2 and sentence in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert pipeline.queue("pending") == []


def test_a_disc_no_worker_here_would_rip_is_refused(pipeline, drive, ripper):
    drive("HEAT")
    for worker in ("nosuch", "w2"):  # w2 transcodes only
        settings = yaml.safe_load(ripper.read_text())
        settings["workers"]["w2"] = {"kinds": ["transcode"]}
        ripper.write_text(yaml.safe_dump(settings))
        done = subprocess.run(
            [MP, "rip", "--device", "/dev/sr0", "--worker", worker, "--config", str(ripper)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"no worker '{worker}' rips in {ripper}: nothing on this host" in done.stderr
    assert pipeline.queue("pending") == []
    typed = subprocess.run(
        [MP, "rip", "--type", "movie", "--title", "Heat", "--worker", "w1", "--config", ripper],
        capture_output=True, text=True,
    )  # fmt: skip
    assert typed.returncode == 2 and "--worker is for --device" in typed.stderr


def test_other_options_do_not_mix_with_a_device(pipeline, drive, ripper):
    done = rip_device(ripper, "/dev/sr0", "--title", "Heat")
    assert done.returncode == 2 and "no --type, --title" in done.stderr
    bare = subprocess.run([MP, "rip", "--config", str(ripper)], capture_output=True, text=True)
    assert bare.returncode == 2 and "--type and --title (or --device" in bare.stderr


RULE_LINE = re.compile(r'^(?:[A-Z]+(?:\{[A-Za-z_]+\})?(?:==|!=|\+=|=)"[^"]*"(?:, |$))+$')


def test_the_udev_rule_starts_the_rip_unit_for_video_discs_only():
    rule = render_udev_rule("/usr/bin/systemctl")
    lines = [line for line in rule.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    for line in lines:
        assert RULE_LINE.match(line), line  # KEY=="value", ... as udev(7) reads them
        assert 'ACTION=="change"' in line and 'KERNEL=="sr[0-9]*"' in line
        assert 'ENV{ID_CDROM_MEDIA}=="1"' in line
        assert line.endswith('RUN+="/usr/bin/systemctl --no-block start mp-rip@%k.service"')
    media = [re.search(r"ID_CDROM_MEDIA_(BD|DVD)", line) for line in lines]
    assert {found[1] for found in media if found is not None} == {"BD", "DVD"}


# udevadm test applies what the rules say to the device: it writes /run/udev's database,
# links in /dev and sets the node's owner and mode. So it runs in a mount namespace with
# its own empty /dev (but /dev/null) and /run, and on a loop device, never a real disk.
UDEV_TEST = """set -e
rules=$0 action=$1 device=$2 keep=$3
mount --bind /dev/null "$keep"
mount -t tmpfs tmpfs /dev
touch /dev/null
mount --bind "$keep" /dev/null
mount -t tmpfs tmpfs /run
mount --bind "$rules" /etc/udev/rules.d
exec udevadm test --action="$action" "$device"
"""
LOOP = min((path.name for path in Path("/sys/class/block").glob("loop[0-9]*")), default=None)


def machine_udev_state() -> tuple:
    node = Path("/dev", str(LOOP)).stat()
    data = Path("/run/udev/data", f"b{os.major(node.st_rdev)}:{os.minor(node.st_rdev)}")
    written = data.stat().st_mtime_ns if data.exists() else None
    return node.st_mode, node.st_uid, node.st_gid, written


def udev_test(rules: Path, action: str) -> str:
    """What udev's own parser and matcher make of the rules in folder rules, for a change
    or add event of a loop device (udevadm test runs no RUN program)."""
    before = machine_udev_state()
    keep = rules.parent / "null"
    keep.touch()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", UDEV_TEST,
         str(rules), action, f"/sys/class/block/{LOOP}", str(keep)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert machine_udev_state() == before, "the machine's own node and udev database as they were"
    return done.stdout + done.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("udevadm") or not shutil.which("unshare")
    or LOOP is None or not Path("/dev", str(LOOP)).exists(),
    reason="udevadm test needs root, unshare, udev and a loop device",
)  # fmt: skip
@pytest.mark.parametrize(
    ("disc", "action", "starts"),
    [
        ({"ID_CDROM_MEDIA_DVD": "1"}, "change", True),
        ({"ID_CDROM_MEDIA_BD": "1"}, "change", True),
        ({"ID_CDROM_MEDIA_CD": "1"}, "change", False),  # an audio CD
        ({"ID_CDROM_MEDIA_DVD": "1"}, "add", False),  # the drive appearing, no disc put in
    ],
)
def test_udev_itself_reads_the_rule_and_starts_the_rip_of_a_video_disc(
    tmp_path, disc, action, starts
):
    """The rule as written, but for the kernel name: this machine has no optical drive, so
    a loop device stands in, with a disc's properties set by a rule before ours."""
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = render_udev_rule("/usr/bin/systemctl")
    assert rule.count('KERNEL=="sr[0-9]*"') == 2
    (rules / "90-media-pipeline.rules").write_text(
        rule.replace('KERNEL=="sr[0-9]*"', f'KERNEL=="{LOOP}"')
    )
    properties = {"ID_CDROM_MEDIA": "1", **disc}
    sets = ", ".join(f'ENV{{{key}}}="{value}"' for key, value in properties.items())
    (rules / "10-stand-in-disc.rules").write_text(f'KERNEL=="{LOOP}", {sets}\n')
    said = udev_test(rules, action)
    assert "90-media-pipeline.rules" in said and "Invalid" not in said, said[-3000:]
    run = f"run: '/usr/bin/systemctl --no-block start mp-rip@{LOOP}.service'"
    assert (run in said) == starts, said[-3000:]


def test_timers_install_on_the_ripper_writes_the_rule_and_the_rip_unit(pipeline):
    dest = pipeline.root / "units"
    said = pipeline.mp("timers", "install", "--dest", str(dest), "--worker", "w1").stdout
    assert (dest / "90-media-pipeline.rules").read_text().count("mp-rip@%k.service") == 2
    assert "udevadm control --reload" in said
    service = (dest / "mp-rip@.service").read_text()
    assert "rip --device /dev/%i --worker w1 --config" in service
    assert "DeviceAllow=block-sr rw" in service
    user = pipeline.root / "user"
    pipeline.mp("timers", "install", "--dest", str(user), "--user", "--worker", "w1")
    assert not (user / "90-media-pipeline.rules").exists(), "udev starts system units only"


def test_a_rip_no_disc_started_names_no_drive(pipeline, monkeypatch):
    monkeypatch.setenv("MP_DEVICE", "/dev/sr9")  # left in the worker's own environment
    pipeline.mp("reconcile")
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.mp("claim", "--worker", "w1")
    [env] = pipeline.root.glob("env.job_*rip*")
    assert not [line for line in env.read_text().splitlines() if line.startswith("MP_DEVICE")]


def ejecting(pipeline, eject: bool = True) -> None:
    settings = yaml.safe_load(pipeline.config_path.read_text())
    settings["workers"]["w1"]["eject"] = eject
    pipeline.config_path.write_text(yaml.safe_dump(settings))


def ejected(tmp_path) -> list[str]:
    said = tmp_path / "drive" / "ejected"
    return said.read_text().splitlines() if said.exists() else []


def test_a_ripper_that_ejects_opens_the_tray_once_the_discs_rip_succeeded(
    pipeline, drive, tmp_path
):
    ejecting(pipeline)
    pipeline.mp("reconcile")
    drive("HEAT", "sr1")
    assert rip_device(pipeline.config_path, "/dev/sr1").returncode == 0
    said = pipeline.mp("claim", "--worker", "w1").stdout
    assert "completed" in said and "ejected the disc from /dev/sr1" in said, said
    assert ejected(tmp_path) == ["/dev/sr1"]
    assert not (tmp_path / "drive" / "sr1").exists()  # the tray is open
    pipeline.mp("reconcile")
    assert pipeline.status_json()["items"][0]["state"] == "RIPPED"


def test_a_failed_rip_keeps_its_disc_in_for_the_retry(pipeline, drive, tmp_path):
    ejecting(pipeline)
    pipeline.mp("reconcile")
    drive("HEAT")
    rip_device(pipeline.config_path)
    pipeline.behave("rip", "fail")
    said = pipeline.mp("claim", "--worker", "w1", expect=None).stdout
    assert "failed" in said and "eject" not in said, said
    assert ejected(tmp_path) == []


def test_only_a_rip_a_disc_started_ejects_and_only_where_eject_is_on(pipeline, drive, tmp_path):
    ejecting(pipeline)
    pipeline.mp("reconcile")
    pipeline.mp("rip", "--type", "movie", "--title", "Ronin (1998)")  # typed, no drive named
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    ejecting(pipeline, False)
    drive("HEAT")
    rip_device(pipeline.config_path)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    assert ejected(tmp_path) == []
    assert (tmp_path / "drive" / "sr0").exists()


def test_a_drive_that_will_not_open_never_fails_the_rip(pipeline, drive, tmp_path):
    ejecting(pipeline)
    pipeline.mp("reconcile")
    drive("HEAT")
    rip_device(pipeline.config_path)
    (tmp_path / "drive" / "stuck").touch()
    done = pipeline.mp("claim", "--worker", "w1")
    assert "completed" in done.stdout and "the disc stays in /dev/sr0" in done.stdout
    warning = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warning) == 1, done.stderr
    assert "could not eject /dev/sr0: eject exited with 1 (eject: unable to eject" in warning[0]
    assert pipeline.queue("completed") and ejected(tmp_path) == ["/dev/sr0"]


@pytest.mark.parametrize(
    ("worker", "sentence"),
    [
        ({"kinds": ["remux"], "eject": True}, "only a worker that rips has a drive to eject"),
        ({"kinds": ["rip"], "eject": "yes"}, "must be true or false, got 'yes'"),
    ],
)
def test_eject_is_a_rippers_true_or_false(pipeline, worker, sentence):
    settings = yaml.safe_load(pipeline.config_path.read_text())
    settings["workers"]["w2"] = worker
    pipeline.config_path.write_text(yaml.safe_dump(settings))
    done = pipeline.mp("config", "validate", expect=2)
    assert "workers.w2.eject" in done.stderr and sentence in done.stderr, done.stderr


def test_validate_on_the_ripper_says_when_eject_is_missing(pipeline, drive, tmp_path, monkeypatch):
    settings = yaml.safe_load(pipeline.config_path.read_text())
    settings["workers"][host_name()] = {"kinds": ["rip"], "eject": True}
    pipeline.config_path.write_text(yaml.safe_dump(settings))
    assert "eject" not in pipeline.mp("config", "validate").stderr  # the stand-in is on PATH
    monkeypatch.setenv("PATH", str(tmp_path / "scripts"))
    said = pipeline.mp("config", "validate").stderr
    assert f"workers.{host_name()}.eject': eject is not installed on this host" in said, said


def as_host(name: str, *argv: str) -> subprocess.CompletedProcess:
    """argv run on another host: a UTS namespace of its own, with its own host name."""
    return subprocess.run(
        ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name, *argv],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def trust_host(pipeline, name: str, ripper: Path) -> None:
    """The ripper `name` trusted on the controller, as docs/install.md says: its `mp keys
    show` line run there."""
    shown = as_host(name, MP, "keys", "show", "--config", str(ripper))
    assert f"mp keys trust {name} ed25519:" in shown.stdout, shown.stdout + shown.stderr
    pipeline.mp(*shown.stdout.split()[-4:])


needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="another host's name needs root and unshare (util-linux)",
)


def pending_specs(pipeline) -> dict[str, dict]:
    pending = pipeline.staging / ".pipeline" / "jobs" / "pending"
    return {path.parent.name: json.loads(path.read_text()) for path in pending.glob("*/spec.json")}


@needs_namespaces
def test_each_ripper_rips_the_disc_in_its_own_drive(pipeline, drive, ripper):
    drive("HEAT")
    trust_host(pipeline, "ct302b", ripper)
    there = as_host("ct302b", MP, "rip", "--device", "/dev/sr0", "--worker", "w1",
                    "--config", str(ripper))  # fmt: skip
    assert there.returncode == 0, there.stderr
    ((heat, spec),) = pending_specs(pipeline).items()
    assert (spec["device"], spec["host"]) == ("/dev/sr0", "ct302b")
    # This host's claim leaves it: the disc is in ct302b's drive.
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    assert pipeline.queue("pending") == [heat]
    assert "disc in ct302b:/dev/sr0" in pipeline.mp("jobs").stdout  # why it waits
    pipeline.mp("reconcile")
    why = pipeline.mp("why", spec["item"]["uid"]).stdout
    assert "for host ct302b, whose drive /dev/sr0 holds the disc" in why, why
    # This host's /dev/sr0 is another drive: its disc is queued too, and ripped here.
    drive("RONIN")
    here = rip_device(ripper)
    assert here.returncode == 0 and "queued job_" in here.stdout, here.stdout + here.stderr
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    assert pipeline.queue("pending") == [heat]
    (ronin_env,) = pipeline.root.glob("env.job_*rip*Ronin*")
    assert "MP_DEVICE=/dev/sr0" in ronin_env.read_text().splitlines()
    # ct302b's own claim takes its disc's rip.
    config = str(pipeline.config_path)
    claimed = as_host("ct302b", MP, "claim", "--worker", "w1", "--config", config)
    assert "completed" in claimed.stdout, claimed.stdout + claimed.stderr
    assert pipeline.queue("pending") == []


@needs_namespaces
def test_a_host_whose_name_a_job_cannot_hold_queues_nothing(pipeline, drive, ripper):
    drive("HEAT")
    long_name = "h" * 64  # Linux allows 64; a DNS label, and a job's host, 63
    done = as_host(long_name, MP, "rip", "--device", "/dev/sr0", "--worker", "w1",
                   "--config", str(ripper))  # fmt: skip
    assert done.returncode == 2 and "is not one a job can name" in done.stderr, done.stderr
    assert pipeline.queue("pending") == []


def rewrite_pending_spec(pipeline, **changes) -> None:
    """Change the one pending job's spec (None: take the field out), signed again with
    the controller's key: the checks behind the signature must refuse it."""
    ((job_id, spec),) = pending_specs(pipeline).items()
    spec.update(changes)
    spec = {key: value for key, value in spec.items() if value is not None}
    path = pipeline.staging / ".pipeline" / "jobs" / "pending" / job_id / "spec.json"
    path.write_text(json.dumps(signed_by_controller(pipeline, spec)))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"host": "../ct302"}, "field 'host' is not a host name beside a rip's 'device'"),
        ({"host": "ghost", "device": "/dev/sda"}, "field 'device' is not an optical drive"),
        ({"host": "ghost", "device": None}, "field 'host' is not a host name beside"),
    ],
)
def test_a_pin_no_job_may_hold_is_refused_not_left_waiting(
    pipeline, drive, ripper, changes, reason
):
    drive("HEAT")
    rip_device(ripper)
    rewrite_pending_spec(pipeline, **changes)
    said = refused_by_worker(pipeline, "rip")
    assert reason in said, said


def failed_for_good(pipeline, device: str = "/dev/sr0") -> dict:
    """A disc's rip on this host that failed with no attempt left; its item, FAILED."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1, "backoff_seconds": 1})
    pipeline.mp("reconcile")
    rip_device(pipeline.config_path, device)
    pipeline.behave("rip", "fail")
    assert "failed for good" in pipeline.mp("claim", "--worker", "w1", expect=None).stdout
    (pipeline.root / "behaviour.rip").unlink()
    pipeline.mp("reconcile")
    (item,) = pipeline.status_json()["items"]
    assert item["state"] == "FAILED"
    return item


def test_a_retried_rip_reads_the_drive_its_disc_was_in_whatever_the_share_says(pipeline, drive):
    drive("HEAT", "sr2")
    item = failed_for_good(pipeline, "/dev/sr2")
    # A newer rip of the item forged into failed/, naming another drive on another host.
    failed = pipeline.staging / ".pipeline" / "jobs" / "failed"
    (real,) = failed.iterdir()
    forged = failed / re.sub(r"_p500_\d{8}T\d+_", "_p500_20991231T235959000000_", real.name)
    shutil.copytree(real, forged)
    spec = json.loads((forged / "spec.json").read_text())
    spec.update(id=forged.name, device="/dev/sr7", host="ghost")
    (forged / "spec.json").write_text(json.dumps(spec))
    pipeline.mp("reconcile")
    said = pipeline.mp("retry", item["uid"], "--dry-run").stdout
    assert f"its rip reads {host_name()}:/dev/sr2 again" in said, said
    pipeline.mp("retry", item["uid"])
    ((_job_id, spec),) = pending_specs(pipeline).items()
    assert (spec["device"], spec["host"]) == ("/dev/sr2", host_name())
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    envs = sorted(pipeline.root.glob("env.job_*rip*"), key=os.path.getmtime)
    assert "MP_DEVICE=/dev/sr2" in envs[-1].read_text().splitlines()


def test_a_disc_rip_the_ripper_queued_and_the_worker_refused_keeps_its_drive(
    pipeline, drive, ripper
):
    drive("HEAT")
    rip_device(ripper)
    pipeline.mp("reconcile")  # the controller takes the item in, and where its disc is
    ((job_id, spec),) = pending_specs(pipeline).items()
    path = pipeline.staging / ".pipeline" / "jobs" / "pending" / job_id / "spec.json"
    # Signed, yet refused by the checks behind the signature.
    path.write_text(json.dumps(signed_by_controller(pipeline, {**spec, "priority": "x"})))
    assert "priority" in refused_by_worker(pipeline, "rip")
    pipeline.mp("reconcile")
    (item,) = pipeline.status_json()["items"]
    assert item["state"] == "FAILED", item
    pipeline.mp("retry", item["uid"])
    ((_job_id, spec),) = pending_specs(pipeline).items()
    assert (spec["device"], spec["host"]) == ("/dev/sr0", host_name())


def test_a_retry_waits_while_its_drive_rips_another_disc(pipeline, drive):
    drive("HEAT")
    heat = failed_for_good(pipeline)
    drive("RONIN")  # the person put the next disc in
    assert rip_device(pipeline.config_path).returncode == 0
    done = pipeline.mp("retry", heat["uid"], expect=2)
    assert f"its drive {host_name()}:/dev/sr0 is ripping another disc now" in done.stderr
    assert len(pipeline.queue("pending")) == 1


def test_a_disc_put_in_again_after_its_rip_failed_is_ripped_from_that_drive(pipeline, drive):
    drive("HEAT")
    heat = failed_for_good(pipeline)
    drive("HEAT", "sr1")  # the person moved it to the other drive
    said = rip_device(pipeline.config_path, "/dev/sr1", "--dry-run").stdout
    assert f"would retry the rip of movie/Heat from {host_name()}:/dev/sr1" in said, said
    done = rip_device(pipeline.config_path, "/dev/sr1")
    assert done.returncode == 0 and "back to RIPPING, queued job_" in done.stdout, done
    assert f"(reading {host_name()}:/dev/sr1 again)" in done.stdout
    ((_job_id, spec),) = pending_specs(pipeline).items()
    assert spec["device"] == "/dev/sr1"
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    drive("RONIN")  # the drive it failed in now holds another disc, ripped as itself
    assert "queued job_" in rip_device(pipeline.config_path).stdout
    pipeline.mp("reconcile")
    states = {i["title"]: i["state"] for i in pipeline.status_json()["items"]}
    assert states == {"Heat": "RIPPED", "Ronin": "RIPPING"}
    uids = {i["title"]: i["uid"] for i in pipeline.status_json()["items"]}
    assert uids["Heat"] == heat["uid"], "the retried rip filled the failed item, no new one"


@needs_namespaces
def test_a_disc_moved_to_another_ripper_is_retried_there(pipeline, drive, ripper):
    pipeline.mp("reconcile")
    trust_host(pipeline, "hosta", ripper)
    trust_host(pipeline, "hostb", ripper)
    drive("HEAT")
    queued = as_host("hosta", MP, "rip", "--device", "/dev/sr0", "--worker", "w1",
                     "--config", str(ripper))  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    pipeline.mp("reconcile")
    ((_job_id, spec),) = pending_specs(pipeline).items()
    pipeline.mp("cancel", spec["item"]["uid"])  # hosta's drive gave up on it
    pipeline.mp("reconcile")
    again = as_host("hostb", MP, "rip", "--device", "/dev/sr0", "--worker", "w1",
                    "--config", str(ripper))  # fmt: skip
    assert again.returncode == 0 and "queued job_" in again.stdout, again.stdout + again.stderr
    pipeline.mp("reconcile")  # sees the new job: the item's drive is hostb's now
    (item,) = pipeline.status_json()["items"]
    assert item_row(pipeline, ItemKey("movie", "Heat"))["drive"] == "hostb:/dev/sr0"
    (pipeline.root / "behaviour.rip").write_text("fail")
    pipeline.write_pipeline_config(jobs={"max_attempts": 1, "backoff_seconds": 1})
    config = str(pipeline.config_path)
    failed = as_host("hostb", MP, "claim", "--worker", "w1", "--config", config)
    assert "failed for good" in failed.stdout, failed.stdout + failed.stderr
    (pipeline.root / "behaviour.rip").unlink()
    pipeline.mp("reconcile")
    said = pipeline.mp("retry", item["uid"], "--dry-run").stdout
    assert "its rip reads hostb:/dev/sr0 again" in said, said


def test_a_rip_queued_without_a_host_still_runs_and_pins_no_drive(pipeline, drive, ripper):
    drive("HEAT", "sr1")
    rip_device(ripper, "/dev/sr1")
    rewrite_pending_spec(pipeline, host=None)  # as a ripper of the last release queued it
    drive("ALIEN", "sr1")  # this host's sr1 may be another host's: not taken as busy
    assert "queued job_" in rip_device(ripper, "/dev/sr1").stdout
    pipeline.write_pipeline_config(jobs={"max_attempts": 1, "backoff_seconds": 1})
    pipeline.mp("reconcile")
    pipeline.behave("rip", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=None)
    pipeline.mp("claim", "--worker", "w1", expect=None)
    (pipeline.root / "behaviour.rip").unlink()
    pipeline.mp("reconcile")
    heat = next(i for i in pipeline.status_json()["items"] if i["title"] == "Heat")
    assert heat["state"] == "FAILED"
    pipeline.mp("retry", heat["uid"])
    ((_job_id, spec),) = pending_specs(pipeline).items()
    assert spec["device"] == "/dev/sr1" and "host" not in spec
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout


def test_a_retried_rip_with_no_drive_recorded_says_so(pipeline):
    pipeline.write_pipeline_config(jobs={"max_attempts": 1, "backoff_seconds": 1})
    pipeline.mp("reconcile")
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.behave("rip", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=None)
    pipeline.mp("reconcile")
    said = pipeline.mp("retry", "movie/Heat (1995)").stdout
    assert "(reading the rip script's own drive: none is recorded)" in said, said


def test_a_failed_rip_that_left_its_folder_is_retried_when_its_disc_goes_in_again(
    pipeline, drive, ripper
):
    drive("HEAT")
    failed_for_good(pipeline)
    ripped = pipeline.staging / "1-ripped" / "movies" / "Heat"
    ripped.mkdir(parents=True)  # the rip script makes its folder before it rips
    (ripped / "title_t00.mkv").write_bytes(b"half a title")
    # On the ripper, which has no database: not finished, and it says what to do.
    said = rip_device(ripper).stdout
    assert "the rip of movie/Heat did not finish" in said and "nothing queued" in said, said
    assert pipeline.queue("pending") == []
    # On the controller: retried from the drive.
    done = rip_device(pipeline.config_path)
    assert done.returncode == 0 and "back to RIPPING, queued job_" in done.stdout, done.stdout
    assert (ripped / "title_t00.mkv").read_bytes() == b"half a title", "nothing removed"


def test_a_tray_bounce_before_reconcile_saw_the_failure_gives_no_wrong_advice(pipeline, drive):
    pipeline.write_pipeline_config(jobs={"max_attempts": 1, "backoff_seconds": 1})
    pipeline.mp("reconcile")
    drive("HEAT")
    rip_device(pipeline.config_path)
    pipeline.behave("rip", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=None)  # failed/, the item still RIPPING
    done = rip_device(pipeline.config_path)
    assert done.returncode == 2, done.stdout
    assert "its rip is queued, running or has just ended ('mp why' says which)" in done.stderr
    assert "forget" not in done.stderr


def test_a_refused_rip_forged_for_a_failed_item_moves_its_drive_nowhere(pipeline, drive):
    drive("HEAT")
    failed_for_good(pipeline)
    failed = pipeline.staging / ".pipeline" / "jobs" / "failed"
    (real,) = failed.iterdir()
    pending = pipeline.staging / ".pipeline" / "jobs" / "pending"
    pending.mkdir(exist_ok=True)
    forged = pending / re.sub(r"_p500_\d{8}T\d+_", "_p500_20991231T235959000000_", real.name)
    shutil.copytree(real, forged)
    spec = json.loads((forged / "spec.json").read_text())
    spec.update(id=forged.name, device="/dev/sr7", host="ghost", priority="x")
    (forged / "spec.json").write_text(json.dumps(spec))
    pipeline.mp("reconcile")
    assert item_row(pipeline, ItemKey("movie", "Heat"))["drive"] == f"{host_name()}:/dev/sr0"


def test_a_cancelled_rip_of_the_rippers_own_put_back_is_refused(pipeline, drive, ripper):
    """A rip the ripper signed runs without the controller's list; once a person has
    cancelled it, the list names it as cancelled, and a copy put back is refused."""
    drive("HEAT")
    assert rip_device(ripper).returncode == 0
    (job_id,) = pipeline.queue("pending")
    pipeline.mp("reconcile")
    kept = pipeline.root / "copy-of-the-rip"
    shutil.copytree(jobs_dir(pipeline) / "pending" / job_id, kept)
    assert "cancelled pending job" in pipeline.mp("cancel", "movie/Heat").stdout
    shutil.rmtree(jobs_dir(pipeline) / "cancelled" / job_id)
    shutil.copytree(kept, jobs_dir(pipeline) / "pending" / job_id)
    claim_refuses(pipeline, job_id, "a person cancelled it")
    assert runs_of(pipeline, "rip") == 0


def test_a_rip_waits_while_the_list_a_worker_read_is_taken_away(pipeline, drive, ripper):
    """A ripper's rip needs no list; but a list taken away after this host read one is
    a share writer's doing (the controller only writes newer ones): the rip waits, and
    runs once the controller has written a list again."""
    pipeline.mp("claim", "--worker", "w1", "--dry-run")  # reads the list: none yet
    drive("HEAT")
    assert rip_device(ripper).returncode == 0
    (job_id,) = pipeline.queue("pending")
    pipeline.mp("reconcile")  # a list, naming the rip
    assert "would claim" in pipeline.mp("claim", "--worker", "w1", "--dry-run").stdout
    (jobs_dir(pipeline) / "live.json").unlink()
    said = pipeline.mp("claim", "--worker", "w1").stdout
    assert "taken away on the share" in said, said
    assert runs_of(pipeline, "rip") == 0
    pipeline.mp("reconcile")
    assert f"job {job_id} completed" in pipeline.mp("claim", "--worker", "w1").stdout


def cancelled_rip_put_back(pipeline, ripper_config, *, keep_cancel: bool = False) -> str:
    """A ripper's own rip queued and taken in (the worker has read a list naming it),
    copied by a share writer, cancelled by a person, then the copy put back in pending/
    (with the cancelled folder removed, unless keep_cancel)."""
    assert rip_device(ripper_config).returncode == 0
    (job_id,) = pipeline.queue("pending")
    pipeline.mp("reconcile")
    assert "would claim" in pipeline.mp("claim", "--worker", "w1", "--dry-run").stdout
    kept = pipeline.root / "copy-of-the-rip"
    shutil.copytree(jobs_dir(pipeline) / "pending" / job_id, kept)
    assert "cancelled pending job" in pipeline.mp("cancel", "movie/Heat").stdout
    if not keep_cancel:
        shutil.rmtree(jobs_dir(pipeline) / "cancelled" / job_id)
    shutil.copytree(kept, jobs_dir(pipeline) / "pending" / job_id)
    return job_id


def test_a_list_that_does_not_verify_holds_a_cancelled_rip_put_back(pipeline, drive, ripper):
    """After this host has read a list, one that does not verify ('{}', or a field
    changed) is a share writer's: the rip waits; the controller's next list names it
    cancelled, and it is refused."""
    drive("HEAT")
    job_id = cancelled_rip_put_back(pipeline, ripper)
    for forged in (
        "{}",
        json.dumps({**json.loads(live_file(pipeline).read_text()), "stopped": []}),
    ):
        live_file(pipeline).write_text(forged)
        said = pipeline.mp("claim", "--worker", "w1").stdout
        assert "none that verifies" in said and runs_of(pipeline, "rip") == 0, said
    pipeline.mp("reconcile")
    claim_refuses(pipeline, job_id, "a person cancelled it")
    assert runs_of(pipeline, "rip") == 0


def test_a_stale_list_still_refuses_a_cancelled_rip(pipeline, drive, ripper):
    """A list too old to run the controller's jobs by (its controller idle, or down)
    still says which jobs a person cancelled, to a host that has read no newer one."""
    drive("HEAT")
    job_id = cancelled_rip_put_back(pipeline, ripper)
    [note] = (pipeline.database.parent / "ledger").glob("newest_live_list")
    note.unlink()  # a worker host that never read a list
    old = time.time() - FRESH_SECONDS - 60
    stale = signed_live(controller_signer(pipeline), [], old, [job_id])
    live_file(pipeline).write_text(json.dumps(stale))
    claim_refuses(pipeline, job_id, "a person cancelled it")
    assert runs_of(pipeline, "rip") == 0


def test_the_cancels_in_the_queue_come_back_after_the_database_is_lost(pipeline, drive, ripper):
    """The database lost, reconcile knows the cancels again from their signed cancel
    files in cancelled/: the list names the job cancelled, and a copy is refused."""
    drive("HEAT")
    job_id = cancelled_rip_put_back(pipeline, ripper, keep_cancel=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(pipeline.database) + suffix).unlink(missing_ok=True)
    pipeline.mp("reconcile", "--dispatch")
    listed = json.loads(live_file(pipeline).read_text())
    assert job_id in listed["stopped"] and job_id not in listed["jobs"], listed
    claim_refuses(pipeline, job_id, "a copy put back")
    assert runs_of(pipeline, "rip") == 0

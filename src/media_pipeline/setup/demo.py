"""`mp demo [DIR]`: the whole pipeline in a sandbox, driven by the real commands.

The sandbox holds its own config, staging, library, database and a folder of simulated
discs made with ffmpeg: a movie with a main feature and two extras (kept as a featurette
and a trailer); a film with Japanese audio only; two discs of a TV season with three
episodes and a menu loop each (the first also a "play all" title, left out; the second
disc's last title a double episode); a specials disc; English and French audio and an
English subtitle. The reference scripts
from the repository's scripts/ do the work; the demo runs reconcile, dispatch and
approvals as the controller would, and claim as each of the three hosts would, until
every item is in the library.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from media_pipeline.approve.session import decide, pending_approvals
from media_pipeline.config.load import load_config
from media_pipeline.config.settings import Config
from media_pipeline.control.dispatch import run_dispatch
from media_pipeline.control.rip import run_rip
from media_pipeline.errors import UsageError
from media_pipeline.items.names import ItemKey
from media_pipeline.library.disc import guess
from media_pipeline.pipeline import (
    DESTINATION_GATE,
    DISC_STAGE,
    ENCODE_STAGE,
    FILING_STAGE,
    GATES,
    REVIEW_GATE,
    SORT_STAGE,
)
from media_pipeline.reconcile import run_reconcile
from media_pipeline.reports.page import page_text
from media_pipeline.reports.stats import format_stats, run_stats
from media_pipeline.reports.status import format_status, run_status
from media_pipeline.setup.scripts import copy_scripts
from media_pipeline.share.fsutil import write_file_atomic
from media_pipeline.worker.claim import run_claim

MOVIE = ItemKey("movie", "Big Buck Bunny (2008)")
# A film whose only audio is Japanese: the remux keeps it, though the demo wants eng, fra.
FOREIGN = ItemKey("movie", "Demo Film (1961)")
SEASON = (
    ItemKey("tv", "Demo Show (2021)", "S01 Disc1"),
    ItemKey("tv", "Demo Show (2021)", "S01 Disc2"),
)
SPECIALS = ItemKey("tv", "Demo Show (2021)", "Specials Disc1")
# Three discs of a show as a udev rip names them, from their labels (no year): the year
# given at the first disc's gate makes the show's folder for all three.
LABELLED = tuple(
    ItemKey(found.type, found.title, found.disc_label)
    for found in (guess(f"ARCHIVE_SERIES_S02_D{number}") for number in (1, 2, 3))
)
LABELLED_YEAR = "2019"
DISCS = (MOVIE, FOREIGN, *SEASON, SPECIALS, *LABELLED)
HOSTS = {
    "ct302": [DISC_STAGE.kind],
    "ct303": [SORT_STAGE.kind],
    "ct304": [ENCODE_STAGE.kind, FILING_STAGE.kind],
}
# The scripts of the stages with one script for both item types (the remux has two).
SCRIPTS = {
    DISC_STAGE.kind: ("rip-disc.sh", ["{output_dir}", "{title}"]),
    ENCODE_STAGE.kind: ("transcode-queue.sh", None),
    FILING_STAGE.kind: ("filebot-process.sh", ["{input_dir}", "{destination}"]),
}
# What the scripts read from their environment in the demo.
DEMO_ENVIRONMENT = {
    "MP_AUDIO_LANGS": "eng fra",
    "MP_SUB_LANGS": "eng",
    "MP_CRF": "30",
    "MP_PRESET": "ultrafast",
    "MP_NO_FILEBOT": "1",  # file by copying even where FileBot is installed
}
MAX_ROUNDS = 12
# What the person in the demo changes at remux_review: the movie's extras get Plex's
# types, and the second disc's last title is a double episode.
DEMO_ROLES = {MOVIE.uid: "1 2:featurette 3:trailer", SEASON[1].uid: "1 2 3:double"}


def _title(
    path: Path,
    seconds: float,
    tone: int,
    with_ffmpeg: bool,
    audio: tuple[str, ...] = ("eng", "fra"),
) -> None:
    """One simulated disc title: small test video, an audio track per language given
    (English and French unless told), English subtitles. Without ffmpeg, a placeholder
    whose size stands for its length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not with_ffmpeg:
        path.write_bytes(b"placeholder video " * int(seconds * 1000))
        return
    subtitles = path.with_suffix(".srt")
    # The cue ends inside the title: a subtitle past the end would lengthen the file.
    end = f"00:00:00,{int(seconds * 800):03d}" if seconds < 1.25 else "00:00:01,000"
    subtitles.write_text(f"1\n00:00:00,000 --> {end}\nHello from the demo\n")
    inputs = ["-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}"]
    for number, _language in enumerate(audio):
        inputs += ["-f", "lavfi", "-i", f"sine=frequency={tone * (number + 1)}:duration={seconds}"]
    inputs += ["-i", str(subtitles)]
    maps = [arg for number in range(len(audio) + 2) for arg in ("-map", str(number))]
    tags = [
        arg
        for number, language in enumerate(audio)
        for arg in (f"-metadata:s:a:{number}", f"language={language}")
    ]
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "srt"]
    tags += ["-metadata:s:s:0", "language=eng"]
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, *maps, *encode, *tags]
    subprocess.run([*command, str(path)], check=True)
    subtitles.unlink()


def make_discs(root: Path, with_ffmpeg: bool) -> None:
    movie = root / "movie" / MOVIE.title
    _title(movie / "title_t00.mkv", 0.6, 330, with_ffmpeg)  # an extra
    _title(movie / "title_t01.mkv", 2.0, 440, with_ffmpeg)  # the main feature
    _title(movie / "title_t02.mkv", 0.4, 550, with_ffmpeg)  # another extra
    _title(root / "movie" / FOREIGN.title / "title_t00.mkv", 1.5, 250, with_ffmpeg, ("jpn",))
    for disc, episodes in ((SEASON[0], 3), (SEASON[1], 3), (SPECIALS, 2)):
        folder = root / "tv" / disc.title / disc.disc_label
        for episode in range(episodes):
            _title(folder / f"title_t{episode:02d}.mkv", 1.2, 300 + 100 * episode, with_ffmpeg)
        _title(folder / f"title_t{episodes:02d}.mkv", 0.3, 900, with_ffmpeg)  # a menu loop
    for disc in LABELLED:
        folder = root / "tv" / disc.title / disc.disc_label
        for episode in range(2):
            _title(folder / f"title_t{episode:02d}.mkv", 1.0, 350 + 50 * episode, with_ffmpeg)
    # The first disc's "play all": as long as its three episodes together (left out).
    play_all = root / "tv" / SEASON[0].title / SEASON[0].disc_label / "title_t04.mkv"
    _title(play_all, 3 * 1.2, 800, with_ffmpeg)


def write_demo_config(sandbox: Path, scripts: Path) -> Path:
    script_table: dict[str, dict] = {
        kind: {"path": str(scripts / name), **({"args": args} if args else {})}
        for kind, (name, args) in SCRIPTS.items()
    }
    script_table[SORT_STAGE.kind] = {
        "movie": {"path": str(scripts / "organize-and-remux-movie.sh")},
        "tv": {"path": str(scripts / "organize-and-remux-tv.sh")},
    }
    config = {
        "staging_root": str(sandbox / "staging"),
        "library_root": str(sandbox / "library"),
        "database": str(sandbox / "state.db"),
        "workers": {host: {"kinds": kinds} for host, kinds in HOSTS.items()},
        "scripts": script_table,
        "gates": list(GATES),
        "jobs": {"heartbeat_seconds": 5, "backoff_seconds": 1},
        "status_page": str(sandbox / "status.html"),
    }
    if os.geteuid() == 0:
        # The sandbox is root's: `mp status --config` on it afterwards stays root
        # rather than becoming the service user (service_user.py).
        config["units"] = {"user": "root", "group": "root"}
    path = sandbox / "config.yaml"
    with open(path, "x", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    for folder in ("staging", "library"):
        (sandbox / folder).mkdir(exist_ok=True)
    return path


def _drive(config: Config, echo: Callable[[str], None]) -> None:
    # As on a new install: the controller's first reconcile makes the database (and the
    # share's id), which every other command needs.
    for line in run_reconcile(config).summary().splitlines():
        echo(f"  ct303 {line}")
    for key in DISCS:
        echo(f"  mp rip: {run_rip(config, key.type, key.title, key.disc_label).message}")
    for round_number in range(1, MAX_ROUNDS + 1):
        echo(f"\nround {round_number}")
        for change in run_reconcile(config).describe():
            if not change.startswith("write "):
                echo(f"  ct303 reconcile: {change}")
        # The labelled show's first disc first: its year reaches the other two.
        waiting = sorted(pending_approvals(config), key=lambda a: a.item["uid"] != LABELLED[0].uid)
        for approval in waiting:
            uid = approval.item["uid"]
            files = DEMO_ROLES.get(uid) if approval.gate == REVIEW_GATE else None
            year = (
                LABELLED_YEAR
                if (uid, approval.gate) == (LABELLED[0].uid, DESTINATION_GATE)
                else None
            )
            flags = (f" --files '{files}'" if files else "") + (f" --year {year}" if year else "")
            decided = decide(config, uid, approved=True, files=files, year=year)
            echo(f"  ct303 approve --yes{flags}: {decided}")
        for name, job_id in run_dispatch(config).queued:
            echo(f"  ct303 dispatch: {job_id.split('_')[3]} job for {name}")
        for host in HOSTS:
            while True:
                result = run_claim(config, host)
                if result.job_id is None:
                    break
                echo(f"  {host} claim: {result.message}")
                if result.failed:
                    raise UsageError(f"the demo's {host} job failed: {result.message}")
        items = run_status(config).items
        if items and all(item["state"] == FILING_STAGE.done for item in items):
            return
    raise UsageError(f"the demo did not finish in {MAX_ROUNDS} rounds; see mp status")


def _mp_command() -> str:
    """How to run this mp again: `mp` when that is this one on PATH (after `make demo`
    it is .venv/bin/mp, not on PATH)."""
    beside = Path(sys.executable).with_name("mp")
    on_path = shutil.which("mp")
    if beside.exists() and (on_path is None or Path(on_path).resolve() != beside.resolve()):
        return str(beside)
    return "mp"


def run_demo(directory: str | None, echo: Callable[[str], None]) -> Path:
    with_ffmpeg = bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))
    if with_ffmpeg:
        echo("media-pipeline demo: real ffmpeg remux and transcode, scripts from scripts/.")
    else:
        echo(
            "media-pipeline demo WITHOUT ffmpeg: the scripts COPY files instead of remuxing "
            "and transcoding (install ffmpeg for the real thing)."
        )
    sandbox = Path(directory or tempfile.mkdtemp(prefix="mp-demo-")).resolve()
    sandbox.mkdir(parents=True, exist_ok=True)
    if (sandbox / "config.yaml").exists():
        raise UsageError(
            f"{sandbox} already holds a demo (config.yaml); give an empty or new folder"
        )
    scripts = sandbox / "scripts"
    copy_scripts(scripts)
    echo(f"sandbox: {sandbox}")
    echo("making the simulated discs ...")
    make_discs(sandbox / "discs", with_ffmpeg)
    config = load_config(str(write_demo_config(sandbox, scripts)))
    saved = {name: os.environ.get(name) for name in (*DEMO_ENVIRONMENT, "MP_DISC_ROOT")}
    os.environ.update({**DEMO_ENVIRONMENT, "MP_DISC_ROOT": str(sandbox / "discs")})
    try:
        _drive(config, echo)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    echo("\n" + format_status(run_status(config)))
    echo("\n" + format_stats(run_stats(config)))
    library = sorted(
        str(path.relative_to(sandbox / "library")) for path in (sandbox / "library").rglob("*.mkv")
    )
    echo("\nlibrary:\n" + "\n".join(f"  {name}" for name in library))
    if config.status_page:
        write_file_atomic(config.status_page, page_text(config))
        echo(f"\nThe status page, for a browser: file://{config.status_page}")
    # MP_CONFIG is what every command reads without --config: once exported, status,
    # stats, jobs, why and the rest all look at the sandbox.
    mp_command = shlex.quote(_mp_command())
    echo("\nPoint every command at the sandbox's config, then look again:")
    echo(f"  export MP_CONFIG={shlex.quote(str(sandbox / 'config.yaml'))}")
    echo(f"  {mp_command} status; {mp_command} stats; {mp_command} jobs")
    return sandbox

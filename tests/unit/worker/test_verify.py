"""Verification reads a media output's end, not its header: real ffmpeg-made files that
are whole, killed mid-encode, cut short or not media at all."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from media_pipeline.jobs.spec import JobSpec
from media_pipeline.library import media as probe_module
from media_pipeline.library.media import (
    describe_files,
    end_problem,
    packets_reach,
    probe,
    probe_to_end,
)
from media_pipeline.worker.verify import verify_outputs

# "" where one is not installed: every test that runs them is skipped then.
FFMPEG = shutil.which("ffmpeg") or ""
FFPROBE = shutil.which("ffprobe") or ""
needs_ffmpeg = pytest.mark.skipif(
    not (FFMPEG and FFPROBE),
    reason="ffmpeg and ffprobe are not installed (make test installs them)",
)
# Small and quick to encode, but video and audio interleaved as in a real file.
SOURCES = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=160x120:rate=25",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440",
    "-c:v",
    "mpeg4",
    "-c:a",
    "aac",
]


def encode(path: Path, seconds: int) -> Path:
    subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", *SOURCES, "-t", str(seconds), "--", str(path)],
        check=True,
        timeout=120,
    )
    return path


def encode_killed(path: Path, after_bytes: int) -> Path:
    """An hour-long encode, SIGKILLed once its output file holds after_bytes. ffmpeg
    writes the hour (from -t) into the MKV header before the first packet, so the file
    declares 3600 s. Its progress reports pace the size checks: no sleeping, and an hour
    of video takes it far longer to encode than the few seconds read here."""
    encoder = subprocess.Popen(
        [
            FFMPEG,
            "-nostdin",
            "-v",
            "error",
            "-progress",
            "pipe:1",
            "-stats_period",
            "0.05",
            *SOURCES,
            "-t",
            "3600",
            "--",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert encoder.stdout is not None
        for _line in encoder.stdout:
            if path.exists() and path.stat().st_size > after_bytes:
                break
        else:
            pytest.fail(f"ffmpeg ended (exit {encoder.wait()}) before writing {after_bytes} B")
    finally:
        encoder.send_signal(signal.SIGKILL)
        encoder.wait()
    assert encoder.returncode == -signal.SIGKILL
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("verify_media")


@pytest.fixture(scope="module")
def healthy(media_dir) -> Path:
    return encode(media_dir / "healthy.mkv", 20)


@pytest.fixture(scope="module")
def killed(media_dir) -> Path:
    return encode_killed(media_dir / "killed.mkv", 300_000)


def job(tmp_path: Path, output: Path, source: Path | None = None) -> JobSpec:
    """A remux job whose output folder holds output (and input folder source). Only
    these fields of a JobSpec are read by verify_outputs."""
    input_dir, output_dir = tmp_path / "in", tmp_path / "out"
    input_dir.mkdir()
    output_dir.mkdir()
    if source is not None:
        shutil.copy(source, input_dir / source.name)
    shutil.copy(output, output_dir / output.name)
    # A stand-in with those fields alone, not a whole JobSpec: reading any other fails.
    return cast(
        JobSpec,
        SimpleNamespace(
            kind="remux",
            input_dir=str(input_dir),
            output_dir=str(output_dir),
            destination="",
            roots=(str(tmp_path), str(tmp_path / "library")),
        ),
    )


def end_of(path: Path | int) -> str | None:
    source = path if isinstance(path, int) else str(path)
    return probe_to_end(FFPROBE, source)[1]


@needs_ffmpeg
def test_a_whole_file_passes(tmp_path, healthy):
    assert probe(FFPROBE, str(healthy))["duration"] == pytest.approx(20, abs=0.1)
    assert end_of(healthy) is None
    assert verify_outputs(job(tmp_path, healthy, source=healthy)) is None


@needs_ffmpeg
def test_one_read_describes_a_file_as_probe_does(healthy, killed):
    for path in (healthy, killed):
        described, _problem = probe_to_end(FFPROBE, str(path))
        assert described == probe(FFPROBE, str(path))
        assert described["video"]["codec"] == "mpeg4" and described["audio"][0]["codec"] == "aac"


@needs_ffmpeg
def test_a_file_from_an_encode_killed_midway_fails(tmp_path, killed):
    # What the header says is not what is there: that is the point of the check.
    assert probe(FFPROBE, str(killed))["duration"] == pytest.approx(3600)
    problem = verify_outputs(job(tmp_path, killed))
    assert problem is not None
    assert problem.startswith(f"output {tmp_path / 'out' / 'killed.mkv'} is truncated: ")
    assert "it declares 3600.0 s but its last packet ends at " in problem


@needs_ffmpeg
def test_an_mp4_from_an_encode_killed_midway_fails(tmp_path):
    # MP4 writes its index (moov) last: without it there is nothing to read at all.
    killed_mp4 = encode_killed(tmp_path / "killed.mp4", 300_000)
    problem = verify_outputs(job(tmp_path, killed_mp4))
    assert problem is not None and "killed.mp4 is not readable media" in problem


@needs_ffmpeg
@pytest.mark.parametrize("keep_share", [0.5, 0.01])
def test_a_file_cut_short_fails(tmp_path, healthy, keep_share):
    cut = tmp_path / "cut.mkv"
    shutil.copy(healthy, cut)
    os.truncate(cut, int(cut.stat().st_size * keep_share))
    problem = end_of(cut)
    assert problem is not None and problem.startswith("is truncated: it declares 20.0 s but ")
    problem = verify_outputs(job(tmp_path, cut, source=healthy))
    assert problem is not None and "cut.mkv is truncated" in problem


@needs_ffmpeg
def test_random_bytes_named_mkv_fail(tmp_path):
    noise = tmp_path / "noise.mkv"
    noise.write_bytes(random.Random(0).randbytes(300_000))
    assert end_of(noise) is not None
    problem = verify_outputs(job(tmp_path, noise))
    assert problem == f"output {tmp_path / 'out' / 'noise.mkv'} is not readable media " + (
        "(ffprobe: Invalid data found when processing input)"
    )


@needs_ffmpeg
def test_a_file_declaring_no_duration_fails_and_says_how_far_it_goes(tmp_path, healthy):
    # Muxed to a pipe from an input without a duration: nowhere to write one afterwards.
    piped = tmp_path / "piped.mkv"
    with piped.open("wb") as handle:
        muxer = subprocess.Popen(
            [
                FFMPEG,
                "-nostdin",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=25:duration=10",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=10",
                "-c:v",
                "mpeg4",
                "-c:a",
                "aac",
                "-f",
                "matroska",
                "-",
            ],
            stdout=subprocess.PIPE,
        )
        assert muxer.stdout is not None
        shutil.copyfileobj(muxer.stdout, handle)
        assert muxer.wait(timeout=120) == 0
    assert "duration" not in probe(FFPROBE, str(piped))
    problem = end_of(piped)
    assert problem is not None and problem.startswith("declares no duration")
    assert problem.endswith("its packets end at 10.0 s")


@needs_ffmpeg
def test_a_descriptor_is_read_not_the_path(tmp_path, healthy):
    whole = tmp_path / "whole.mkv"
    shutil.copy(healthy, whole)
    descriptor = os.open(whole, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        # The name now means something else; the descriptor still means the file opened.
        replacement = tmp_path / "replacement.mkv"
        replacement.write_bytes(random.Random(1).randbytes(300_000))
        os.replace(replacement, whole)
        assert end_of(whole) is not None
        assert probe(FFPROBE, descriptor)["duration"] == pytest.approx(20, abs=0.1)
        assert end_of(descriptor) is None
        assert probe_to_end(FFPROBE, descriptor) == (probe(FFPROBE, descriptor), None)
    finally:
        os.close(descriptor)


@needs_ffmpeg
def test_a_descriptor_of_a_truncated_file_fails(killed):
    descriptor = os.open(killed, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        problem = end_of(descriptor)
    finally:
        os.close(descriptor)
    assert problem is not None and problem.startswith("is truncated: it declares 3600.0 s")


def test_an_end_that_cannot_be_read_in_time_is_a_problem(tmp_path, monkeypatch):
    hanging = tmp_path / "ffprobe"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(probe_module, "END_READ_SECONDS", 0.2)
    assert probe_to_end(str(hanging), str(tmp_path / "x.mkv")) == (
        {},
        "could not be read to its end within 0.2 s",
    )


# The decision itself, on ffprobe's JSON, without a file.


def streams(*kinds: str) -> list[dict]:
    return [{"index": index, "codec_type": kind} for index, kind in enumerate(kinds)]


def test_the_end_is_counted_from_the_files_start_time():
    # A TS file's clock starts anywhere: 30000 s here.
    probed = {
        "streams": streams("video", "audio"),
        "format": {"start_time": "30000.000000"},
        "packets": [
            {"stream_index": 0, "pts_time": "30050.000", "duration_time": "0.040"},
            {"stream_index": 1, "pts_time": "30059.980", "duration_time": "0.020"},
        ],
    }
    assert packets_reach(probed) == pytest.approx((50.0, 60.0))
    assert end_problem(60.0, packets_reach(probed)) is None


def test_cover_art_and_data_tracks_do_not_count():
    probed = {
        "streams": [
            {"index": 0, "codec_type": "video", "disposition": {"attached_pic": 1}},
            {"index": 1, "codec_type": "data"},
            {"index": 2, "codec_type": "audio"},
        ],
        "format": {"start_time": "0.000000"},
        "packets": [
            {"stream_index": 2, "pts_time": "5.000", "duration_time": "0.020"},
            {"stream_index": 0, "pts_time": "0.000", "duration_time": "7200.000"},
            {"stream_index": 1, "pts_time": "N/A", "dts_time": "7000.000"},
        ],
    }
    assert packets_reach(probed) == pytest.approx((5.0, 5.02))
    assert end_problem(7200.0, packets_reach(probed)) == (
        "is truncated: it declares 7200.0 s but its last packet ends at 5.0 s"
    )


def test_the_tolerance_is_seconds_or_a_small_share():
    assert end_problem(60.0, (50.0, 58.5)) is None
    assert end_problem(60.0, (50.0, 57.5)) is not None
    assert end_problem(7200.0, (7160.0, 7170.0)) is None  # 0.5 % of two hours is 36 s
    assert end_problem(7200.0, (7150.0, 7160.0)) is not None


def test_a_read_that_stopped_at_its_window_is_not_called_an_end():
    # The seek landed at 0 in a file without an index: the window ended the read.
    stopped = end_problem(7200.0, (0.0, 119.9))
    assert stopped is not None and stopped.startswith("cannot be checked: ")
    short = end_problem(7200.0, (7150.0, 7155.0))
    assert short is not None and short.startswith("is truncated: ")


def test_nothing_read_is_a_problem_with_or_without_a_declared_duration():
    assert end_problem(60.0, None) == (
        "is truncated: it declares 60.0 s but no packet near its end can be read"
    )
    assert end_problem(None, None) == "declares no duration and no packet could be read from it"


def test_without_a_declared_duration_the_reason_says_how_far_the_packets_go():
    ended = end_problem(None, (20.0, 29.0))
    assert ended is not None and ended.endswith("its packets end at 29.0 s")
    # Landed at the start of a file without an index: the window ended the read.
    stopped = end_problem(None, (0.0, 119.5))
    assert stopped is not None and stopped.endswith("its packets reach at least 119.5 s")


@needs_ffmpeg
def test_a_gate_lists_and_probes_files_by_descriptor_never_through_a_link(tmp_path, healthy):
    folder = tmp_path / "staging" / "2-remuxed" / "movie"
    folder.mkdir(parents=True)
    shutil.copy(healthy, folder / "title.mkv")
    (folder / "notes.txt").write_text("four")
    (folder / "elsewhere.mkv").symlink_to(healthy)
    os.mkfifo(folder / "pipe.mkv")  # would block a reader forever
    described = describe_files(str(tmp_path / "staging"), str(folder))
    assert [entry["name"] for entry in described] == ["notes.txt", "title.mkv"]
    assert described[0] == {"name": "notes.txt", "size": 4}
    assert described[1]["duration"] == pytest.approx(20, abs=0.1)
    # A link anywhere on the way to the folder: nothing is listed.
    (tmp_path / "staging" / "linked").symlink_to(folder.parent)
    assert (
        describe_files(str(tmp_path / "staging"), str(tmp_path / "staging" / "linked" / "movie"))
        == []
    )


@needs_ffmpeg
def test_an_output_with_a_second_name_fails_rather_than_goes_unread(tmp_path, healthy):
    spec = job(tmp_path, healthy, source=healthy)
    output = Path(spec.output_dir) / healthy.name
    os.link(output, tmp_path / "elsewhere.mkv")  # the output is now also a file elsewhere
    problem = verify_outputs(spec)
    assert problem is not None and "is a hard link" in problem


@needs_ffmpeg
def test_a_playlist_named_like_media_is_not_followed(tmp_path, healthy):
    """ffprobe takes a file by its contents: an HLS playlist named .mkv would make it
    read the file the playlist names, anywhere on the host. Only media demuxers run."""
    secret = tmp_path / "outside" / "private.ts"
    secret.parent.mkdir()
    subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(healthy), "-c", "copy", str(secret)], check=True
    )
    playlist = tmp_path / "playlist.mkv"
    playlist.write_text(f"#EXTM3U\n#EXTINF:20.0,\nfile://{secret}\n#EXT-X-ENDLIST\n")
    assert probe(FFPROBE, str(playlist)).get("duration") is None
    problem = verify_outputs(job(tmp_path, playlist))
    assert problem is not None and "not readable media" in problem

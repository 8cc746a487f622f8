"""Verifying a job's media output beside a stream copy of the same file, side by side
in one run, on a realistic 2-hour MKV.

Verification is what the worker does after a remux job: an ffprobe of the input for its
duration, one of the output for its tracks and its last packets. The stream copy
(`ffmpeg -i in -map 0 -c copy out.mkv`) is the cheapest job that could have made the
output. The file: a 60 s clip of 720p H.264 and AAC at about 2 Mbit/s, looped to length
with `-stream_loop -1 -t 7200 -c copy`, in a temporary folder removed at the end.

    python benchmarks/verify.py [--hours 2] [--repeat 3]
Target: verification at most 5% of the copy. Needs ffmpeg (with libx264) and ffprobe,
and free disk for two copies of the file (about 1.8 GB each at 2 hours).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import SimpleNamespace

from media_pipeline.library.media import probe_to_end
from media_pipeline.worker.verify import verify_outputs

TARGET_PERCENT = 5.0
CLIP_SECONDS = 60
VIDEO_KBITS = 1800
AUDIO_KBITS = 160


def ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *arguments], check=True)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def build_movie(folder: str, seconds: int) -> str:
    """A clip with detail an encoder must spend its bitrate on (noise over testsrc2),
    looped to `seconds` without re-encoding."""
    clip = os.path.join(folder, "clip.mkv")
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=24,noise=alls=12:allf=t+u",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(CLIP_SECONDS),
        "-c:v", "libx264", "-preset", "veryfast",
        "-b:v", f"{VIDEO_KBITS}k", "-maxrate", f"{VIDEO_KBITS}k", "-bufsize", f"{2 * VIDEO_KBITS}k",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBITS}k",
        clip,
    )  # fmt: skip
    movie = os.path.join(folder, "movie.mkv")
    ffmpeg("-stream_loop", "-1", "-i", clip, "-map", "0", "-c", "copy", "-t", str(seconds), movie)
    os.remove(clip)
    return movie


def measure(hours: float, repeat: int) -> dict:
    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
        raise SystemExit("ffmpeg and ffprobe are needed")
    ffprobe = shutil.which("ffprobe") or "ffprobe"
    seconds = round(hours * 3600)
    expected_bytes = seconds * (VIDEO_KBITS + AUDIO_KBITS) * 1000 // 8
    with tempfile.TemporaryDirectory(prefix="mp-bench-verify-") as scratch:
        free = shutil.disk_usage(scratch).free
        # The movie and one stream copy of it at a time, and room to spare.
        if free < 4 * expected_bytes:
            raise SystemExit(
                f"{scratch} has {free / 1e9:.1f} GB free; this needs {4 * expected_bytes / 1e9:.1f}"
            )
        input_dir, output_dir = os.path.join(scratch, "in"), os.path.join(scratch, "out")
        os.makedirs(input_dir)
        os.makedirs(output_dir)
        movie = build_movie(output_dir, seconds)
        # A remux job as the worker sees it: its input and its output of the same length.
        # A copy, not a hard link: verification refuses a file with a second name (it
        # could be a name for a file outside the share).
        shutil.copyfile(movie, os.path.join(input_dir, "movie.mkv"))
        job = SimpleNamespace(  # the fields of a JobSpec verify_outputs reads
            kind="remux",
            input_dir=input_dir,
            output_dir=output_dir,
            destination="",
            roots=(scratch, os.path.join(scratch, "library")),
        )
        copy = os.path.join(scratch, "copy.mkv")

        def stream_copy() -> None:
            ffmpeg("-i", movie, "-map", "0", "-c", "copy", copy)

        def verify() -> None:
            problem = verify_outputs(job)  # type: ignore[arg-type]
            if problem is not None:
                raise SystemExit(f"the benchmark's own file fails verification: {problem}")

        def output_check() -> None:
            probe_to_end(ffprobe, movie)

        stream_copy()  # warm the page cache for both
        verify()
        os.remove(copy)
        copies, verifies, output_checks = [], [], []
        for _ in range(repeat):  # interleaved, so both see the same machine
            copies.append(timed(stream_copy))
            os.remove(copy)
            verifies.append(timed(verify))
            output_checks.append(timed(output_check))
        return {
            "bytes": os.path.getsize(movie),
            "seconds": probe_to_end(ffprobe, movie)[0]["duration"],
            "copy": statistics.median(copies),
            "verify": statistics.median(verifies),
            "output_check": statistics.median(output_checks),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0, help="length of the test file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="rows as JSON, for report.py")
    arguments = parser.parse_args()
    measured = measure(arguments.hours, arguments.repeat)
    percent = 100 * measured["verify"] / measured["copy"]
    passed = percent <= TARGET_PERCENT
    size = f"{arguments.hours:g} h MKV"
    if arguments.json:
        rows = [
            {
                "name": f"verify output / stream copy, {size}, %",
                "value": percent,
                "target": f"<= {TARGET_PERCENT:g}%",
                "passed": passed,
            },
            {
                "name": f"  verify (ffprobe input; output's tracks and end), {size}, s",
                "value": measured["verify"],
                "target": "",
                "passed": None,
            },
            {
                "name": f"  of which the output's tracks and end, {size}, s",
                "value": measured["output_check"],
                "target": "",
                "passed": None,
            },
            {
                "name": f"  stream copy, {size}, s",
                "value": measured["copy"],
                "target": "",
                "passed": None,
            },
        ]
        print(json.dumps(rows))
        return 0
    verdict = "PASS" if passed else "FAIL"
    print(
        f"verify: {size} ({measured['bytes'] / 1e9:.2f} GB, {measured['seconds']:.0f} s, "
        f"{measured['bytes'] * 8 / measured['seconds'] / 1e6:.1f} Mbit/s), "
        f"median of {arguments.repeat}: verification {measured['verify'] * 1000:.0f} ms "
        f"(the output's tracks and end {measured['output_check'] * 1000:.0f} ms), "
        f"stream copy {measured['copy']:.2f} s: {percent:.1f}% "
        f"(target <= {TARGET_PERCENT:g}%) {verdict}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

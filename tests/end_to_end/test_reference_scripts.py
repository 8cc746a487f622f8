"""The reference remux script with real ffmpeg: audio is never lost, preferred languages
come first, forced subtitles are kept with their flag."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import ffmpeg_title, tree_snapshot

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="ffmpeg is not installed (make test installs it)",
)


def title(path: Path, audio: list[tuple[str, bool]], subs: Sequence[tuple[str, bool]] = ()) -> None:
    """A one-second title with audio tracks (language, default) and subtitle tracks
    (language, forced)."""
    srt = path.parent / "line.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nhello\n")
    args = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi"]
    args += ["-i", "testsrc=size=64x48:rate=5:duration=1"]
    for number, _ in enumerate(audio):
        args += ["-f", "lavfi", "-i", f"sine=frequency={300 + 100 * number}:duration=1"]
    for _ in subs:
        args += ["-i", str(srt)]
    for number in range(1 + len(audio) + len(subs)):
        args += ["-map", str(number)]
    args += ["-c:v", "mpeg4", "-c:a", "aac", "-c:s", "srt"]
    for number, (language, default) in enumerate(audio):
        args += [f"-metadata:s:a:{number}", f"language={language}"]
        args += [f"-disposition:a:{number}", "default" if default else "0"]
    for number, (language, forced) in enumerate(subs):
        args += [f"-metadata:s:s:{number}", f"language={language}"]
        args += [f"-disposition:s:{number}", "forced" if forced else "0"]
    subprocess.run([*args, str(path)], check=True)


def remux(tmp_path: Path, **env: str) -> tuple[list[tuple[str, str, str]], str]:
    """Run the movie remux on tmp_path/in; the output's (type, language, forced) streams
    and what the script said."""
    done = subprocess.run(
        ["bash", str(SCRIPTS / "organize-and-remux-movie.sh"), "in", "out"],
        cwd=tmp_path,
        env={**os.environ, "MP_ITEM_TITLE": "Film (1954)", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    probed = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries",
            "stream=codec_type:stream_tags=language:stream_disposition=forced",
            "-of", "csv=p=0", str(tmp_path / "out" / "Film (1954).mkv"),
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    streams = []
    for line in probed.splitlines():
        kind, forced, *language = line.split(",")
        streams.append((kind, language[0] if language else "", forced))
    return [s for s in streams if s[0] != "video"], done.stdout


@pytest.fixture
def source(tmp_path):
    (tmp_path / "in").mkdir()
    return tmp_path / "in" / "t00.mkv"


def test_a_title_with_only_foreign_audio_keeps_its_audio(tmp_path, source):
    title(source, [("jpn", False)])
    streams, said = remux(tmp_path)
    assert streams == [("audio", "jpn", "0")]
    assert "no track in eng; kept the original" in said


def test_the_original_is_the_default_flagged_track(tmp_path, source):
    title(source, [("jpn", False), ("kor", True)])
    streams, _ = remux(tmp_path, MP_AUDIO_LANGS="eng fra")
    assert streams == [("audio", "kor", "0")]


def test_preferred_languages_come_first_in_their_order(tmp_path, source):
    title(source, [("eng", True), ("deu", False), ("fra", False)])
    streams, _ = remux(tmp_path, MP_AUDIO_LANGS="fra eng")
    assert streams == [("audio", "fra", "0"), ("audio", "eng", "0")]


def test_forced_subtitles_are_kept_with_their_flag_and_others_dropped(tmp_path, source):
    title(source, [("eng", True)], [("deu", False), ("deu", True), ("eng", False)])
    streams, _ = remux(tmp_path)
    assert streams == [("audio", "eng", "0"), ("subtitle", "deu", "1"), ("subtitle", "eng", "0")]


def test_a_movies_other_titles_are_kept_as_extras_unless_dropped(tmp_path, source):
    title(source, [("eng", True)])  # t00, one second: the main feature, the longest
    shutil.copy(source, tmp_path / "in" / "t01.mkv")  # as long: an extra (not longer)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-t", "0.4",
         "-c", "copy", str(tmp_path / "in" / "t02.mkv")], check=True,
    )  # fmt: skip
    _streams, said = remux(tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mkv")) == [
        "Extra 01.mkv",
        "Extra 02.mkv",
        "Film (1954).mkv",
    ]
    assert "extra: t02.mkv -> Extra 02.mkv" in said
    shutil.rmtree(tmp_path / "out")
    _streams, said = remux(tmp_path, MP_EXTRAS="drop")
    assert [p.name for p in (tmp_path / "out").glob("*.mkv")] == ["Film (1954).mkv"]
    assert said.count("dropped (MP_EXTRAS=drop)") == 2


def test_filing_puts_a_movies_extras_in_other_and_never_overwrites(tmp_path):
    staged = tmp_path / "3-transcoded" / "Film (1954)"
    staged.mkdir(parents=True)
    for name in ("Film (1954).mkv", "Extra 01.mkv"):
        (staged / name).write_bytes(name.encode())
    destination = tmp_path / "library" / "Movies" / "Film (1954)" / "Film (1954).mkv"
    env = {**os.environ, "MP_ITEM_TITLE": "Film (1954)", "MP_NO_FILEBOT": "1"}
    command = ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), str(destination)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert destination.read_bytes() == b"Film (1954).mkv"
    assert (destination.parent / "Other" / "Extra 01.mkv").read_bytes() == b"Extra 01.mkv"
    # Filed again (a second copy of the same title): refused, the library untouched.
    (staged / "Film (1954).mkv").write_bytes(b"another copy")
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr
    assert destination.read_bytes() == b"Film (1954).mkv"


def file_disc(staged: Path, destination: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), destination],
        env={**os.environ, "MP_NO_FILEBOT": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_tv_disc_filed_again_after_a_failure_goes_on_with_the_same_numbers(tmp_path):
    staged = tmp_path / "3-transcoded" / "Lost (2004)" / "S01 Disc2"
    staged.mkdir(parents=True)
    for number in (1, 2, 3):
        (staged / f"Lost (2004) - S01 Disc2 - Episode {number:02d}.mkv").write_bytes(b"%d" % number)
    season = tmp_path / "library" / "TV Shows" / "Lost (2004)" / "Season 01"
    season.mkdir(parents=True)
    (season / "Lost (2004) - s01e05.mkv").write_bytes(b"someone else's")
    env = {"MP_ITEM_TYPE": "tv", "MP_ITEM_TITLE": "Lost (2004)", "MP_SEASON": "1",
           "MP_FIRST_EPISODE": "4"}  # fmt: skip
    # A destination typed without its final / is still the season's folder.
    first = file_disc(staged, str(season), **env)
    assert first.returncode == 1 and "refusing to overwrite" in first.stderr
    assert (season / "Lost (2004) - s01e05.mkv").read_bytes() == b"someone else's"
    (season / "Lost (2004) - s01e05.mkv").unlink()
    again = file_disc(staged, f"{season}/", **env)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in season.iterdir()} == {
        "Lost (2004) - s01e04.mkv": b"1",
        "Lost (2004) - s01e05.mkv": b"2",
        "Lost (2004) - s01e06.mkv": b"3",
    }
    assert not list(staged.glob("*.mkv"))


def test_a_movie_is_never_guessed_among_several_files(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("title_t00.mkv", "title_t01.mkv"):
        (staged / name).write_bytes(name.encode())
    destination = tmp_path / "library" / "Movies" / "Heat (1995)" / "Heat (1995).mkv"
    env = {"MP_ITEM_TYPE": "movie", "MP_ITEM_TITLE": "Heat (1995)"}
    done = file_disc(staged, str(destination), **env)
    assert done.returncode == 1 and "which is the movie?" in done.stderr
    assert sorted(p.name for p in staged.glob("*.mkv")) == ["title_t00.mkv", "title_t01.mkv"]
    assert not (tmp_path / "library").exists()
    folder = file_disc(staged, f"{destination.parent}/", **env)
    assert folder.returncode == 1 and "a movie's destination is a file" in folder.stderr


def test_a_movie_filed_again_after_an_extra_failed_files_the_rest(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("Heat (1995).mkv", "Extra 01.mkv", "Extra 02.mkv"):
        (staged / name).write_bytes(name.encode())
    destination = tmp_path / "library" / "Movies" / "Heat (1995)" / "Heat (1995).mkv"
    other = destination.parent / "Other"
    other.mkdir(parents=True)
    (other / "Extra 02.mkv").write_bytes(b"in the way")
    env = {"MP_ITEM_TYPE": "movie", "MP_ITEM_TITLE": "Heat (1995)"}
    assert file_disc(staged, str(destination), **env).returncode == 1
    (other / "Extra 02.mkv").unlink()
    again = file_disc(staged, str(destination), **env)
    assert again.returncode == 0, again.stderr
    assert destination.read_bytes() == b"Heat (1995).mkv"
    assert sorted(p.name for p in other.iterdir()) == ["Extra 01.mkv", "Extra 02.mkv"]


def test_the_original_audio_is_kept_beside_the_preferred_language(tmp_path, source):
    title(source, [("fra", True), ("eng", False)])  # a French film, an English commentary
    streams, said = remux(tmp_path, MP_AUDIO_LANGS="eng")
    assert streams == [("audio", "eng", "0"), ("audio", "fra", "0")]
    assert "kept the original" in said


def test_episodes_are_named_for_the_show_folder_the_person_approved(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "Lost - S01 Disc1 - Episode 01.mkv").write_bytes(b"1")
    season = tmp_path / "library" / "TV Shows" / "Lost (2004)" / "Season 01"
    env = {"MP_ITEM_TYPE": "tv", "MP_ITEM_TITLE": "Lost", "MP_SEASON": "1",
           "MP_FIRST_EPISODE": "1"}  # fmt: skip
    assert file_disc(staged, f"{season}/", **env).returncode == 0
    assert [p.name for p in season.iterdir()] == ["Lost (2004) - s01e01.mkv"]


# A stand-in for FileBot with its command line: it checks that it is asked for plain-file
# mode, a copy and the fixed format '{fn}', and copies as FileBot would (the file's name,
# its extension kept, into --output), refusing to replace a file (--conflict fail).
FAKE_FILEBOT = r"""#!/usr/bin/env python3
import shutil, sys
from pathlib import Path
args = sys.argv[1:]
option = lambda name: args[args.index(name) + 1]
assert args[0] == "-rename", args
assert (option("--db"), option("--format"), option("--action"), option("--conflict")) == (
    "file", "{fn}", "copy", "fail"), args
source = Path(args[1])
target = Path(option("--output")) / source.name
if target.exists():
    sys.exit("conflict")
shutil.copyfile(source, target)
with open(Path(__file__).with_name("filebot.calls"), "a") as calls:
    calls.write(str(target) + "\n")
"""


@pytest.mark.parametrize("with_filebot", [False, True], ids=["copy", "filebot"])
def test_filing_follows_the_file_list_exactly(tmp_path, with_filebot):
    staged = tmp_path / "3-transcoded" / "Lost" / "S01 Disc1"
    staged.mkdir(parents=True)
    names = ["Episode 01.mkv", "Episode 02.mkv", "Making {of} 'it'.mkv", "Menu.mkv"]
    for name in names:
        (staged / name).write_bytes(name.encode())
    show = tmp_path / "library" / "TV Shows" / "Lost (2004)"
    files = (
        "Episode 02.mkv\tSeason 01/Lost (2004) - s01e04.mkv\n"
        "Episode 01.mkv\tSeason 01/Lost (2004) - s01e05-e06.mkv\n"
        "Making {of} 'it'.mkv\tFeaturettes/Making {of} 'it'.mkv\n"
    )
    env = {"MP_ITEM_TYPE": "tv", "MP_ITEM_TITLE": "Lost", "MP_FILES": files}
    if with_filebot:
        tools = stand_in(tmp_path, FAKE_FILEBOT)
        env["PATH"] = f"{tools}:{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), f"{show}/Season 01/"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    filed = {str(p.relative_to(show)): p.read_bytes() for p in show.rglob("*") if p.is_file()}
    assert filed == {
        "Season 01/Lost (2004) - s01e04.mkv": b"Episode 02.mkv",
        "Season 01/Lost (2004) - s01e05-e06.mkv": b"Episode 01.mkv",
        "Featurettes/Making {of} 'it'.mkv": b"Making {of} 'it'.mkv",
    }
    assert [p.name for p in staged.glob("*.mkv")] == ["Menu.mkv"], "left out: stays staged"
    assert (staged / ".pipeline" / "filebot.done").exists()
    if with_filebot:
        calls = (tmp_path / "tools" / "filebot.calls").read_text().splitlines()
        assert len(calls) == 3 and all("/.mp-part." in call for call in calls)
        assert not list((staged / ".pipeline" / "filing").glob(".mp-part.*")), "links gone"


def test_filing_never_goes_through_or_onto_a_link_in_the_library(tmp_path):
    staged = tmp_path / "3-transcoded" / "Film"
    staged.mkdir(parents=True)
    (staged / "Film.mkv").write_bytes(b"film")
    (staged / "Extra 01.mkv").write_bytes(b"extra")
    movie = tmp_path / "library" / "Movies" / "Film (1954)"
    movie.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (movie / "Featurettes").symlink_to(elsewhere)  # planted by a share writer
    (movie / "Film (1954).mkv").symlink_to(tmp_path / "nothing-there")  # a dangling link
    for files, said in (
        ("Film.mkv\tFilm (1954).mkv\n", "is a link: refusing to file onto it"),
        ("Extra 01.mkv\tFeaturettes/Extra 01.mkv\n", "is a link: not filing through it"),
    ):
        done = subprocess.run(
            ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), f"{movie}/Film (1954).mkv"],
            env={**os.environ, "MP_NO_FILEBOT": "1", "MP_ITEM_TITLE": "Film", "MP_FILES": files},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 1 and said in done.stderr
    assert sorted(p.name for p in staged.glob("*.mkv")) == ["Extra 01.mkv", "Film.mkv"]
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "nothing-there").exists()


def filing(staged: Path, destination: Path, files: str, tools: Path | None = None):
    env = {**os.environ, "MP_ITEM_TITLE": "Film", "MP_FILES": files}
    env.pop("MP_NO_FILEBOT", None)
    env["PATH"] = f"{tools}:{os.environ['PATH']}" if tools else os.environ["PATH"]
    if tools is None:
        env["MP_NO_FILEBOT"] = "1"
    return subprocess.run(
        ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), str(destination)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def movie_with(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    staged = tmp_path / "3-transcoded" / "Film"
    staged.mkdir(parents=True)
    for name in names:
        (staged / name).write_bytes(name.encode())
    return staged, tmp_path / "library" / "Movies" / "Film (1954)" / "Film (1954).mkv"


def test_a_library_file_named_like_a_temporary_copy_is_never_touched(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv", "Making of.mkv")
    movie.parent.joinpath("Featurettes").mkdir(parents=True)
    theirs = movie.parent / "Featurettes" / "Making of.part.mkv"
    theirs.write_bytes(b"someone's featurette")
    done = filing(
        staged, movie, "Film.mkv\tFilm (1954).mkv\nMaking of.mkv\tFeaturettes/Making of.mkv\n"
    )
    assert done.returncode == 0, done.stderr
    assert theirs.read_bytes() == b"someone's featurette"
    assert (movie.parent / "Featurettes" / "Making of.mkv").read_bytes() == b"Making of.mkv"


def test_a_taken_place_stops_the_job_before_it_files_anything(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv", "Making of.mkv")
    (movie.parent / "Featurettes").mkdir(parents=True)
    (movie.parent / "Featurettes" / "Making of.mkv").write_bytes(b"another featurette")
    files = "Film.mkv\tFilm (1954).mkv\nMaking of.mkv\tFeaturettes/Making of.mkv\n"
    done = filing(staged, movie, files)
    assert done.returncode == 1 and "(nothing filed)" in done.stderr
    assert not movie.exists() and (staged / "Film.mkv").exists()


# A FileBot stand-in that, on its first call, swaps the next file's staged name for a
# link to a file outside the roots (as a share writer could while a copy runs), and
# fails when told to.
SWAPPING_FILEBOT = FAKE_FILEBOT.replace(
    "source = Path(args[1])",
    "source = Path(args[1])\n"
    "import os\n"
    "swap = Path(__file__).with_name('swap')\n"
    "if swap.exists():\n"
    "    victim = Path(swap.read_text())\n"
    "    victim.unlink(); victim.symlink_to(Path(__file__).with_name('secret')); swap.unlink()\n"
    "if Path(__file__).with_name('fail').exists():\n"
    "    sys.exit('FileBot failed')\n"
    "fail_in = Path(__file__).with_name('fail-in')\n"
    "if fail_in.exists() and Path(option('--output')).name == fail_in.read_text():\n"
    "    sys.exit('FileBot failed there')",
)


def stand_in(tmp_path: Path, program: str) -> Path:
    """A folder for PATH holding `filebot`, the given stand-in."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "filebot").write_text(program)
    (tools / "filebot").chmod(0o755)
    return tools


def test_a_source_swapped_for_a_link_while_filing_is_refused_not_followed(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv", "Making of.mkv")
    tools = stand_in(tmp_path, SWAPPING_FILEBOT)
    (tools / "secret").write_text("root:SECRET")
    (tools / "swap").write_text(str(staged / "Making of.mkv"))
    files = "Film.mkv\tFilm (1954).mkv\nMaking of.mkv\tFeaturettes/Making of.mkv\n"
    done = filing(staged, movie, files, tools)
    assert done.returncode == 1 and "is not a plain file" in done.stderr
    assert not (movie.parent / "Featurettes").exists(), "nothing of the secret was copied"
    assert movie.read_bytes() == b"Film.mkv"


def test_a_failed_filebot_leaves_no_link_and_the_next_run_files(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv")
    tools = stand_in(tmp_path, SWAPPING_FILEBOT)
    (tools / "fail").touch()
    first = filing(staged, movie, "Film.mkv\tFilm (1954).mkv\n", tools)
    assert first.returncode != 0 and "FileBot failed" in first.stderr
    assert not list((staged / ".pipeline" / "filing").glob(".mp-part.*"))
    assert (staged / "Film.mkv").stat().st_nlink == 1
    (tools / "fail").unlink()
    again = filing(staged, movie, "Film.mkv\tFilm (1954).mkv\n", tools)
    assert again.returncode == 0, again.stderr
    assert movie.read_bytes() == b"Film.mkv" and not (staged / "Film.mkv").exists()


def test_a_run_that_fails_half_way_leaves_staging_whole_and_the_next_goes_on(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv", "Making of.mkv")
    tools = stand_in(tmp_path, SWAPPING_FILEBOT)
    (tools / "fail-in").write_text("Featurettes")  # the second file's copy fails
    files = "Film.mkv\tFilm (1954).mkv\nMaking of.mkv\tFeaturettes/Making of.mkv\n"
    first = filing(staged, movie, files, tools)
    assert first.returncode != 0 and movie.read_bytes() == b"Film.mkv"
    assert sorted(p.name for p in staged.glob("*.mkv")) == ["Film.mkv", "Making of.mkv"]
    (tools / "fail-in").unlink()
    again = filing(staged, movie, files, tools)
    assert again.returncode == 0, again.stderr
    assert "already filed" in again.stdout and not list(staged.glob("*.mkv"))
    assert (movie.parent / "Featurettes" / "Making of.mkv").read_bytes() == b"Making of.mkv"


def test_a_vanished_source_counts_as_filed_only_where_this_item_filed_it(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv", "Making of.mkv")
    movie.parent.mkdir(parents=True)
    movie.write_bytes(b"another film")  # something at its place, not filed by this item
    (staged / "Film.mkv").unlink()
    files = "Film.mkv\tFilm (1954).mkv\nMaking of.mkv\tFeaturettes/Making of.mkv\n"
    done = filing(staged, movie, files)
    assert done.returncode == 1 and "no Film.mkv in" in done.stderr
    assert movie.read_bytes() == b"another film"


def test_a_linked_pipeline_folder_is_not_filed_through(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (staged / ".pipeline").symlink_to(elsewhere)
    done = filing(staged, movie, "Film.mkv\tFilm (1954).mkv\n")
    assert done.returncode == 1 and ".pipeline is a link" in done.stderr
    assert list(elsewhere.iterdir()) == [] and not movie.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_filing_folder_made_by_another_user_is_not_used(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv")
    scratch = staged / ".pipeline" / "filing"
    scratch.mkdir(parents=True)
    os.chown(scratch, 65534, 65534)  # made in advance by someone else, marks and all
    done = filing(staged, movie, "Film.mkv\tFilm (1954).mkv\n")
    assert done.returncode == 1 and "is not this user's" in done.stderr
    assert not movie.exists() and (staged / "Film.mkv").exists()


# -- the temporary copy never goes through a link ------------------------------------------


def outside_the_roots(tmp_path: Path) -> Path:
    """A file outside staging and the library that a share writer aims at."""
    keys = tmp_path / "home" / ".ssh" / "authorized_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text("ssh-ed25519 AAAA owner\n")
    return keys


def part_name(target: Path, extension: str) -> str:
    """The temporary copy's name beside target, as the script makes it."""
    return f".mp-part.{hashlib.sha256(str(target).encode()).hexdigest()[:16]}{extension}"


def test_the_temporary_copy_is_named_from_the_files_own_name_not_its_path(tmp_path):
    """Its extension was the text after the path's last dot: for x.b/authorized_keys,
    '.mp-part.<hash>.b/authorized_keys', below a link a share writer planted there."""
    keys = outside_the_roots(tmp_path)
    before = tree_snapshot(keys.parent)
    staged, _movie = movie_with(tmp_path, "Film.mkv")
    folder = tmp_path / "library" / "Movies" / "x.b"
    folder.mkdir(parents=True)
    target = folder / "authorized_keys"
    (folder / part_name(target, ".b")).symlink_to(keys.parent)
    done = filing(staged, target, "Film.mkv\tauthorized_keys\n")
    assert tree_snapshot(keys.parent) == before, "written through the planted link"
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == b"Film.mkv", "filed where it was told, in the library"


def test_a_link_at_the_temporary_name_is_refused_not_removed_or_followed(tmp_path):
    keys = outside_the_roots(tmp_path)
    staged, movie = movie_with(tmp_path, "Film.mkv")
    movie.parent.mkdir(parents=True)
    part = movie.parent / part_name(movie, ".mkv")
    part.symlink_to(keys)
    done = filing(staged, movie, "Film.mkv\tFilm (1954).mkv\n")
    assert done.returncode == 1 and f"{part} is a link: not copying through it" in done.stderr
    assert keys.read_text() == "ssh-ed25519 AAAA owner\n" and part.is_symlink()
    assert not movie.exists() and (staged / "Film.mkv").exists()


# Stand-ins for cp and mv that put a link where the real one is about to write (a share
# writer winning the race between the script's check and its copy or rename), then run
# the real one.
RACING = """#!/usr/bin/env bash
for last; do :; done
ln -s -- "$MP_TEST_LINK_TO" "$last"
exec {real} "$@"
"""


@pytest.mark.parametrize(
    ("program", "aim", "said"),
    [
        ("cp", "file", None),  # copied anew, never through the link
        ("mv", "folder", "is not the copy of"),  # never moved into the linked folder
    ],
    ids=["cp", "mv"],
)
def test_a_link_appearing_just_before_the_copy_or_the_rename_is_not_followed(
    tmp_path, program, aim, said
):
    keys = outside_the_roots(tmp_path)
    before = tree_snapshot(keys.parent)
    staged, movie = movie_with(tmp_path, "Film.mkv")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / program).write_text(RACING.format(real=shutil.which(program)))
    (tools / program).chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), str(movie)],
        env={**os.environ, "MP_NO_FILEBOT": "1", "MP_ITEM_TITLE": "Film",
             "MP_FILES": "Film.mkv\tFilm (1954).mkv\n", "PATH": f"{tools}:{os.environ['PATH']}",
             "MP_TEST_LINK_TO": str(keys if aim == "file" else keys.parent)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert tree_snapshot(keys.parent) == before, f"{program} went through the link"
    if said is None:
        assert done.returncode == 0, done.stderr
        assert not movie.is_symlink() and movie.read_bytes() == b"Film.mkv"
    else:
        assert done.returncode == 1 and said in done.stderr


SWAPPING = """#!/usr/bin/env bash
# The first copy swaps the stage folder above the item for a link elsewhere, as a share
# writer can while the script runs; then the real program runs.
if [[ ! -e $MP_TEST_SWAPPED ]]; then
  touch "$MP_TEST_SWAPPED"
  mv -- "$MP_TEST_STAGE" "$MP_TEST_STAGE.aside"
  ln -s -- "$MP_TEST_LINK_TO" "$MP_TEST_STAGE"
fi
exec {real} "$@"
"""


def test_a_stage_folder_swapped_for_a_link_while_filing_leads_nowhere_else(tmp_path):
    """Run by mp, the script starts in the item's folder the worker opened and reaches
    everything of the item from there: the copy of a look-alike item outside the roots,
    reached through a link swapped in above the item mid-run, is neither removed nor
    given markers (the hostile review removed a file outside the roots so)."""
    staged, movie = movie_with(tmp_path, "Film.mkv")
    outside = tmp_path / "outside"
    (outside / "Film").mkdir(parents=True)
    (outside / "Film" / "Film.mkv").write_bytes(b"Film.mkv")  # the same bytes: cmp passes
    before = tree_snapshot(outside)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "cp").write_text(SWAPPING.format(real=shutil.which("cp")))
    (tools / "cp").chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), str(movie)],
        cwd=staged,
        env={**os.environ, "MP_NO_FILEBOT": "1", "MP_ITEM_TITLE": "Film",
             "MP_FILES": "Film.mkv\tFilm (1954).mkv\n", "MP_INPUT_OPENED": "1",
             "PATH": f"{tools}:{os.environ['PATH']}", "MP_TEST_SWAPPED": str(tmp_path / "s"),
             "MP_TEST_STAGE": str(staged.parent), "MP_TEST_LINK_TO": str(outside)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (tmp_path / "s").exists(), "the swap happened"
    assert done.returncode == 0, done.stderr
    assert tree_snapshot(outside) == before, "something outside the roots changed"
    real = staged.parent.with_name("3-transcoded.aside") / "Film"
    assert (real / ".pipeline" / "filebot.done").exists()
    assert not (real / "Film.mkv").exists(), "the item's own staged file went"
    assert movie.read_bytes() == b"Film.mkv"


def test_a_folder_that_is_no_longer_the_checked_one_is_not_filed(tmp_path):
    staged, movie = movie_with(tmp_path, "Film.mkv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        ["bash", str(SCRIPTS / "filebot-process.sh"), str(staged), str(movie)],
        cwd=elsewhere,  # the name led elsewhere than the folder the worker opened
        env={**os.environ, "MP_NO_FILEBOT": "1", "MP_ITEM_TITLE": "Film",
             "MP_FILES": "Film.mkv\tFilm (1954).mkv\n", "MP_INPUT_OPENED": "1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "is no longer the folder mp checked: nothing filed" in done.stderr
    assert not movie.exists() and (staged / "Film.mkv").exists()


# -- discs as they come ------------------------------------------------------------------


def test_a_bibliographic_language_code_counts_as_its_terminological_twin(tmp_path, source):
    """ISO 639-2 gives twenty languages two codes: a dub tagged fre is French for a
    person who asked for fra, and a subtitle tagged deu is German for one who asked ger."""
    title(source, [("eng", True), ("fre", False), ("ita", False)], [("deu", False), ("dut", False)])
    streams, _ = remux(tmp_path, MP_AUDIO_LANGS="eng fra", MP_SUB_LANGS="ger nld")
    assert streams == [
        ("audio", "eng", "0"),
        ("audio", "fre", "0"),
        ("subtitle", "deu", "0"),
        ("subtitle", "dut", "0"),
    ]


def dispositions(path: Path) -> list[tuple[str, str, str, str]]:
    """(type, language, default, forced) of each audio and subtitle stream, by ffprobe."""
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type:stream_tags=language:stream_disposition=default,forced",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [
        (s["codec_type"], s.get("tags", {}).get("language", ""),
         str(s["disposition"]["default"]), str(s["disposition"]["forced"]))
        for s in json.loads(probed)["streams"] if s["codec_type"] != "video"
    ]  # fmt: skip


def test_kept_subtitles_keep_their_own_flags_and_none_is_made_default(tmp_path, source):
    """ffmpeg's stream copy flags the first of two or more subtitles default when none
    was: a player would then show German lines all through an English film."""
    title(source, [("eng", True)], [("deu", True), ("eng", False), ("fra", False)])
    _streams, _said = remux(tmp_path, MP_SUB_LANGS="eng fra")
    assert dispositions(tmp_path / "out" / "Film (1954).mkv") == [
        ("audio", "eng", "1", "0"),
        ("subtitle", "deu", "0", "1"),
        ("subtitle", "eng", "0", "0"),
        ("subtitle", "fra", "0", "0"),
    ]


def test_the_first_kept_audio_is_the_default_when_no_kept_audio_was(tmp_path, source):
    title(source, [("jpn", False), ("eng", False)], [("eng", False), ("eng", False)])
    _streams, _said = remux(tmp_path)
    assert dispositions(tmp_path / "out" / "Film (1954).mkv") == [
        ("audio", "eng", "1", "0"),
        ("audio", "jpn", "0", "0"),
        ("subtitle", "eng", "0", "0"),
        ("subtitle", "eng", "0", "0"),
    ]


def visible_media(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.mkv") if not p.name.startswith("."))


# An ffmpeg that fails its first run half way, leaving what it had written (as a full
# share or a crash does), and is the real one after.
FAILING_ONCE = """#!/usr/bin/env bash
for last; do :; done
if [[ ! -e $MP_TEST_FAILED ]]; then
  touch -- "$MP_TEST_FAILED"
  printf 'half a file' > "$last"
  echo "No space left on device" >&2
  exit 1
fi
exec {real} "$@"
"""


@pytest.mark.parametrize(
    "script", ["transcode-queue.sh", "organize-and-remux-tv.sh", "organize-and-remux-movie.sh"]
)
def test_a_run_that_failed_half_way_succeeds_when_run_again(tmp_path, source, script):
    title(source, [("eng", True)])
    shutil.copy(source, tmp_path / "in" / "t01.mkv")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ffmpeg").write_text(FAILING_ONCE.format(real=shutil.which("ffmpeg")))
    (tools / "ffmpeg").chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "MP_ITEM_TITLE": "Film",
           "MP_DISC_LABEL": "D1", "MP_TEST_FAILED": str(tmp_path / "failed")}  # fmt: skip
    command = ["bash", str(SCRIPTS / script), "in", "out"]
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    first = subprocess.run(command, **run)
    assert first.returncode != 0 and "No space left" in first.stderr
    assert visible_media(tmp_path / "out") == [], "no half file under a final name"
    again = subprocess.run(command, **run)
    assert again.returncode == 0, again.stderr
    made = visible_media(tmp_path / "out")
    assert len(made) == 2 and all(dispositions(path) for path in made), "whole media"
    assert not list((tmp_path / "out").glob(".mp-part.*")), "no temporary left"
    stage = "transcode" if script.startswith("transcode") else "remux"
    assert (tmp_path / "out" / ".pipeline" / f"{stage}.done").exists()


def test_a_killed_runs_temporary_is_replaced_and_a_finished_file_never(tmp_path, source):
    title(source, [("eng", True)])
    shutil.copy(source, tmp_path / "in" / "t01.mkv")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".mp-part.t00.mkv").write_bytes(b"killed half way")
    (out / "t01.mkv").write_bytes(b"finished by an earlier run")
    done = subprocess.run(
        ["bash", str(SCRIPTS / "transcode-queue.sh"), "in", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert dispositions(out / "t00.mkv") == [("audio", "eng", "1", "0")]
    assert (out / "t01.mkv").read_bytes() == b"finished by an earlier run"
    assert "already made by an earlier run, kept: t01.mkv" in done.stdout
    assert not list(out.glob(".mp-part.*"))


def play_all_of(path: Path, *episodes: Path) -> None:
    """The episodes end to end in one title, as a disc's "Play All" is."""
    listing = path.with_suffix(".txt")
    listing.write_text("".join(f"file '{episode}'\n" for episode in episodes))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0",
         "-i", str(listing), "-c", "copy", str(path)],
        check=True,
    )  # fmt: skip
    listing.unlink()


def remux_tv(tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["bash", str(SCRIPTS / "organize-and-remux-tv.sh"), "in", "out"],
        cwd=tmp_path,
        env={**os.environ, "MP_ITEM_TITLE": "Lost", "MP_DISC_LABEL": "S01 Disc1", **(env or {})},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_a_play_all_title_is_left_out_and_its_episodes_kept(tmp_path):
    """t00 is the three episodes end to end: it was the only title kept (the others are
    less than half as long), filed as one episode, and the episodes were lost."""
    (tmp_path / "in").mkdir()
    episodes = [tmp_path / "in" / f"t0{n}.mkv" for n in (1, 2, 3)]
    for number, (path, seconds) in enumerate(zip(episodes, (4, 5, 4.4), strict=True)):
        ffmpeg_title(path, seconds, 300 + 100 * number)
    ffmpeg_title(tmp_path / "in" / "t04.mkv", 1, 900)  # a short extra
    play_all_of(tmp_path / "in" / "t00.mkv", *episodes)
    said = remux_tv(tmp_path).stdout
    assert [p.name for p in visible_media(tmp_path / "out")] == [
        f"Lost - S01 Disc1 - Episode 0{n}.mkv" for n in (1, 2, 3)
    ]
    lasted = [float(length_in_seconds(p)) for p in visible_media(tmp_path / "out")]
    assert [round(seconds) for seconds in lasted] == [4, 5, 4]
    told = 'skipped (a "play all": as long as t01.mkv + t02.mkv + t03.mkv together): t00.mkv'
    assert told in said
    assert "skipped (too short for an episode): t04.mkv" in said


def test_a_disc_without_a_play_all_keeps_its_longest_title(tmp_path):
    """A double episode as long as two others, give or take more than the slack, is an
    episode."""
    (tmp_path / "in").mkdir()
    for number, seconds in enumerate((8, 4.5, 4), start=1):
        ffmpeg_title(tmp_path / "in" / f"t0{number}.mkv", seconds, 300 + 100 * number)
    said = remux_tv(tmp_path).stdout
    assert len(visible_media(tmp_path / "out")) == 3 and "play all" not in said


def length_in_seconds(path: Path) -> str:
    return subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


# A makemkvcon and a cp that fail their first run half way (a scratched disc, a full
# share), leaving what they had written, and work after.
FAILING_MAKEMKVCON = """#!/usr/bin/env bash
for last; do :; done
if [[ ! -e $MP_TEST_FAILED ]]; then
  touch -- "$MP_TEST_FAILED"
  printf 'half a title' > "$last/title_t00.mkv"
  exit 1
fi
cp -- "$MP_TEST_DISC"/*.mkv "$last/"
"""
FAILING_CP = """#!/usr/bin/env bash
for last; do :; done
if [[ -d $last ]]; then last="$last/$(basename -- "${{@: -2:1}}")"; fi
if [[ ! -e $MP_TEST_FAILED ]]; then
  touch -- "$MP_TEST_FAILED"
  printf 'half a title' > "$last"
  exit 1
fi
exec {real} "$@"
"""


@pytest.mark.parametrize("tool", ["makemkvcon", "cp"])
def test_a_rip_that_failed_half_way_gives_whole_titles_when_run_again(tmp_path, source, tool):
    title(source, [("eng", True)])
    disc = tmp_path / "discs" / "movie" / "Film"
    disc.mkdir(parents=True)
    shutil.copy(source, disc / "title_t00.mkv")
    shutil.copy(source, disc / "title_t01.mkv")
    tools = tmp_path / "tools"
    tools.mkdir()
    program = FAILING_MAKEMKVCON if tool == "makemkvcon" else FAILING_CP
    (tools / tool).write_text(program.format(real=shutil.which("cp")))
    (tools / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}",
           "MP_TEST_FAILED": str(tmp_path / "failed"), "MP_TEST_DISC": str(disc)}  # fmt: skip
    env.pop("MP_DISC_ROOT", None)
    if tool == "cp":
        env["MP_DISC_ROOT"] = str(tmp_path / "discs")
    command = ["bash", str(SCRIPTS / "rip-disc.sh"), "ripped", "Film"]
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert subprocess.run(command, **run).returncode != 0
    assert visible_media(tmp_path / "ripped") == [], "no half title under a final name"
    again = subprocess.run(command, **run)
    assert again.returncode == 0, again.stderr
    ripped = tmp_path / "ripped"
    assert {p.name: p.read_bytes() for p in visible_media(ripped)} == {
        "title_t00.mkv": source.read_bytes(),
        "title_t01.mkv": source.read_bytes(),
    }
    assert not list(ripped.glob(".mp-part.*")) and (ripped / ".pipeline" / "rip.done").exists()


def without_ffprobe(tmp_path: Path) -> dict:
    """An environment whose PATH has every command of this host but ffprobe."""
    tools = tmp_path / "no-ffprobe"
    tools.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for command in Path(folder).glob("*") if Path(folder).is_dir() else []:
            if command.name != "ffprobe" and not (tools / command.name).exists():
                (tools / command.name).symlink_to(command)
    return {"PATH": str(tools)}


@pytest.mark.parametrize("lengths", ["ffprobe", "sizes"])
def test_every_title_as_long_as_others_together_is_a_play_all(tmp_path, lengths):
    """Besides the whole disc's play-all (t00), a second one of its first two episodes
    (t05), long enough to pass for an episode: once only the longest title was checked,
    and t05 was remuxed as a fifth episode. Without ffprobe, lengths are sizes, and a
    play-all made of the episodes' own streams is their sizes together."""
    (tmp_path / "in").mkdir()
    episodes = [tmp_path / "in" / f"t0{n}.mkv" for n in (1, 2, 3, 4)]
    for number, (path, seconds) in enumerate(zip(episodes, (4, 4.5, 5, 4.2), strict=True)):
        ffmpeg_title(path, seconds, 300 + 100 * number)
    play_all_of(tmp_path / "in" / "t00.mkv", *episodes)
    play_all_of(tmp_path / "in" / "t05.mkv", *episodes[:2])
    env = without_ffprobe(tmp_path) if lengths == "sizes" else {}
    said = remux_tv(tmp_path, env).stdout
    assert [p.name for p in visible_media(tmp_path / "out")] == [
        f"Lost - S01 Disc1 - Episode 0{n}.mkv" for n in (1, 2, 3, 4)
    ], said
    told = 'skipped (a "play all": as long as t01.mkv + t02.mkv + t03.mkv + t04.mkv together)'
    assert f"{told}: t00.mkv" in said
    assert 'skipped (a "play all": as long as t01.mkv + t02.mkv together): t05.mkv' in said

"""share.Folder, the one opener of files on the share: links, FIFOs, sizes and depth are
refused; writes are atomic; deletes never leave the folder they start in."""

from __future__ import annotations

import json
import os

import pytest

from media_pipeline.share.files import MAX_JSON_DEPTH, BadEntry, Folder, link_in_path, open_below


@pytest.fixture
def share(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("private\n")
    with Folder.open_root(str(root)) as folder:
        yield root, outside, folder


def test_a_linked_folder_is_never_entered(share):
    root, outside, folder = share
    (root / "jobs").symlink_to(outside)
    with pytest.raises(BadEntry, match="symbolic link"):
        folder.child("jobs")
    with pytest.raises(BadEntry, match="symbolic link"):
        folder.child("jobs", create=True)
    with pytest.raises(BadEntry, match="symbolic link"):
        open_below(str(root.parent), str(root / "jobs" / "deeper"))


def test_linked_and_special_files_are_refused(share):
    root, outside, folder = share
    (root / "log").symlink_to(outside / "secret")
    os.mkfifo(root / "fifo")
    for name, problem in (("log", "symbolic link"), ("fifo", "not a regular file")):
        with pytest.raises(BadEntry, match=problem):
            folder.read_bytes(name)
    with pytest.raises(BadEntry, match="symbolic link"):
        folder.open_append("log")
    assert (outside / "secret").read_text() == "private\n"


def test_reads_are_bounded_in_size_and_depth(share):
    root, _outside, folder = share
    (root / "big").write_bytes(b"x" * 2000)
    with pytest.raises(BadEntry, match="larger than 1000 bytes"):
        folder.read_bytes("big", limit=1000)
    (root / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(BadEntry, match="not a JSON object"):
        folder.read_json("deep.json")
    nested: dict = {}
    inner = nested
    for _level in range(MAX_JSON_DEPTH + 1):
        inner["x"] = {}
        inner = inner["x"]
    (root / "nested.json").write_text(json.dumps(nested))
    with pytest.raises(BadEntry, match="not a JSON object"):
        folder.read_json("nested.json")
    assert folder.read_json("absent.json") is None


def test_an_atomic_write_replaces_a_link_rather_than_writing_through_it(share):
    root, outside, folder = share
    (root / "result.json").symlink_to(outside / "secret")
    folder.write_atomic("result.json", "{}\n")
    assert not (root / "result.json").is_symlink()
    assert (outside / "secret").read_text() == "private\n"
    assert sorted(os.listdir(root)) == ["result.json"]


def test_a_planted_temporary_name_is_not_written_through(share):
    root, outside, folder = share
    import threading

    planted = root / f".state.{os.getpid()}.{threading.get_ident()}.tmp"
    planted.symlink_to(outside / "secret")
    folder.write_atomic("state", "RIPPED\n")
    assert (root / "state").read_text() == "RIPPED\n"
    assert (outside / "secret").read_text() == "private\n"


def test_hard_links_are_refused_and_a_heartbeat_never_touches_a_link(share):
    root, outside, folder = share
    os.link(outside / "secret", root / "log")  # same filesystem: a second name for it
    with pytest.raises(BadEntry, match="hard link"):
        folder.open_append("log")
    with pytest.raises(BadEntry, match="hard link"):
        folder.read_bytes("log")
    (root / "heartbeat").symlink_to(outside / "secret")
    before = os.stat(outside / "secret").st_mtime_ns
    with pytest.raises(BadEntry, match="symbolic link"):
        folder.touch("heartbeat")
    assert os.stat(outside / "secret").st_mtime_ns == before
    assert (outside / "secret").read_text() == "private\n"


def test_json_with_text_no_utf8_can_hold_is_refused(share):
    root, _outside, folder = share
    (root / "spec.json").write_text('{"item": {"title": "\\udc80"}}')
    with pytest.raises(BadEntry, match="not a JSON object"):
        folder.read_json("spec.json")
    (root / "keys.json").write_text('{"\\ud800": 1}')
    with pytest.raises(BadEntry, match="not a JSON object"):
        folder.read_json("keys.json")


def test_a_link_on_the_way_to_a_script_path_is_found(tmp_path):
    (tmp_path / "1-ripped" / "movies").mkdir(parents=True)
    (tmp_path / "1-ripped" / "tv").symlink_to("/etc")
    assert link_in_path(str(tmp_path), str(tmp_path / "1-ripped" / "movies" / "Heat")) is None
    found = link_in_path(str(tmp_path), str(tmp_path / "1-ripped" / "tv" / "Show" / "D1"))
    assert found == str(tmp_path / "1-ripped" / "tv")
    (tmp_path / "1-ripped" / "movies" / "Heat.mkv").write_text("x")
    assert link_in_path(str(tmp_path), str(tmp_path / "1-ripped" / "movies" / "Heat.mkv")) is None
    assert link_in_path(str(tmp_path), "/etc/passwd") == "/etc/passwd"


def test_the_filing_scripts_own_leftover_link_is_no_hazard(tmp_path):
    from media_pipeline.share.files import hazard_in

    item = tmp_path / "3-transcoded" / "movies" / "Film"
    (item / ".pipeline" / "filing").mkdir(parents=True)
    (item / "Film.mkv").write_bytes(b"film")
    # What a killed run of the filing script leaves: a second name for the file it filed.
    os.link(item / "Film.mkv", item / ".pipeline" / "filing" / ".mp-part.0123456789abcdef.mkv")
    assert hazard_in(str(tmp_path), str(item)) is None
    # Any other second name is still one.
    os.link(item / "Film.mkv", item / "Film again.mkv")
    assert hazard_in(str(tmp_path), str(item)) is not None


def test_what_mp_makes_on_the_share_gets_the_modes_the_umask_leaves(share):
    """Files 0666 and folders 0777 before the umask, as tools make them: the umask
    (config `umask`, 022 by default) alone decides who else may read or write."""
    root, _outside, folder = share
    previous = os.umask(0o022)
    try:
        folder.write_atomic("state", "REMUXED\n")
        folder.mkdir("made")
        with folder.child("asked", create=True):
            pass
    finally:
        os.umask(previous)
    assert (root / "state").stat().st_mode & 0o777 == 0o644
    assert (root / "made").stat().st_mode & 0o777 == 0o755
    assert (root / "asked").stat().st_mode & 0o777 == 0o755


def test_a_step_too_long_for_the_filesystem_is_named_as_the_hazard(tmp_path):
    long_name = "x" * 300  # past NAME_MAX: the open fails with ENAMETOOLONG
    (tmp_path / "1-ripped").mkdir()
    found = link_in_path(str(tmp_path), str(tmp_path / "1-ripped" / long_name / "D1"))
    assert found == str(tmp_path / "1-ripped" / long_name)


def test_a_link_at_the_end_of_a_script_path_is_a_hazard_even_to_a_file(share, tmp_path):
    """A destination's own file may already be there (filed before); a link there to a
    file is not one: the script would write through it, outside the roots."""
    root, outside, _folder = share
    (root / "Movies" / "Heat").mkdir(parents=True)
    (root / "Movies" / "Heat" / "Heat.mkv").write_bytes(b"filed before")
    assert link_in_path(str(root), str(root / "Movies" / "Heat" / "Heat.mkv")) is None
    (root / "Movies" / "Heat" / "Heat.mkv").unlink()
    (root / "Movies" / "Heat" / "Heat.mkv").symlink_to(outside / "secret")
    found = link_in_path(str(root), str(root / "Movies" / "Heat" / "Heat.mkv"))
    assert found == str(root / "Movies" / "Heat" / "Heat.mkv")


@pytest.mark.parametrize(
    "data",
    [
        b'{"title": "\\xed\\xb2\\x80"}',  # a surrogate encoded as UTF-8 bytes
        b'{"title": "\\xff"}',
        "{" + '"a": {' * 13 + "}" * 14,  # one level too deep
        '{"a": [[[[[[[[[[[[1]]]]]]]]]]]]}',
        '{"title": "\\udc80"}',
        '{"title": "\udc80"}',  # a lone surrogate already in the text
    ],
)
def test_json_that_no_utf8_can_hold_or_too_deep_is_refused(data):
    from media_pipeline.share.files import parse_json_object

    if isinstance(data, bytes):
        data = data.decode("unicode_escape").encode("latin-1")
    assert parse_json_object(data) is None


def test_json_within_the_limits_is_read():
    from media_pipeline.share.files import parse_json_object

    twelve = "{" + '"a": {' * 11 + "}" * 12
    assert parse_json_object(twelve) is not None
    assert parse_json_object('{"t": "[{[{ \\u00e9 \\ud83c\\udfac"}') == {"t": "[{[{ é 🎬"}
    assert parse_json_object(b"{}") == {}

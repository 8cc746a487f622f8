"""The queue's folder mechanics at library level: back-off files, the claim rename, and
telling a local disk (where a failed rename is final) from a network share."""

from __future__ import annotations

import itertools
import math
import os
import time
from datetime import UTC, datetime

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.queue import JobName, Queue, RunningName, make_job_id
from media_pipeline.share.fsutil import filesystem_type
from media_pipeline.worker.slots import take_slot

MOUNTS = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:35 / /srv/media rw,relatime shared:20 - nfs4 nas:/export/media rw,vers=4.2
41 40 0:36 / /srv/media/local\\040disk rw,relatime shared:21 - xfs /dev/sdb1 rw
42 22 0:37 / /srv/media2 rw - ext4 /dev/sdc1 rw
43 42 0:38 / /srv/media2 rw - cifs //nas/share rw
"""


def test_the_filesystem_of_a_path_is_its_longest_mount_point():
    assert filesystem_type("/srv/media/Movies", MOUNTS) == "nfs4"
    assert filesystem_type("/srv/media", MOUNTS) == "nfs4"
    assert filesystem_type("/srv/media/local disk/x", MOUNTS) == "xfs"  # \040 is a space
    assert filesystem_type("/srv/mediax", MOUNTS) == "ext4"  # a prefix, not a parent
    assert filesystem_type("/srv/media2/jobs", MOUNTS) == "cifs"  # mounted over ext4
    assert filesystem_type("/srv/x", "garbage line\n\n") is None


def test_a_lost_race_on_a_share_asks_whether_the_rename_happened(tmp_path):
    queue = Queue(str(tmp_path / "jobs"))
    queue.ensure_layout()
    job_id = "job_p500_20260101T000000000000_remux_movie_0123456789ab"
    os.mkdir(queue.folder("pending", job_id))
    # As on NFS after a retransmitted rename: the job already sits under our own name,
    # and the rename we see fails with ENOENT.
    ours = f"{job_id}.w1.42.t1765000000"
    os.rename(queue.folder("pending", job_id), queue.folder("running", ours))
    queue.renames_are_exact = False  # what filesystem_type says of an nfs4 share
    assert queue.claim(job_id, "w1", 42, now=1765000000.5) == ours
    assert queue.claim(job_id, "w2", 43) is None  # another claimer's name: not ours
    local = Queue(queue.root)
    assert local.renames_are_exact  # tmp_path is on this host's disk
    assert local.claim(job_id, "w1", 42, now=1765000000) is None


def test_back_off_files_come_with_the_pending_listing(tmp_path):
    queue = Queue(str(tmp_path / "jobs"))
    queue.ensure_layout()
    job_id = "job_p500_20260101T000000000000_remux_movie_0123456789ab"
    queue.hold(job_id, 1000.2)
    queue.hold(job_id, 2000.0)
    os.mkdir(queue.folder("pending", job_id))
    names, waits = queue.pending()
    assert names == [job_id] and waits == {job_id: 2000}
    assert queue.remove_expired_waits(now=1500) == 1
    assert queue.pending()[1] == {job_id: 2000}


def test_max_running_slots_live_where_systemd_shares_them(tmp_path, monkeypatch):
    shared = tmp_path / "run" / "media-pipeline"  # what RuntimeDirectory= makes
    shared.mkdir(parents=True)
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(shared))
    monkeypatch.delenv("MP_LOCK_DIR", raising=False)  # the tests' own folder, set by conftest
    queue_dir = str(tmp_path / "jobs")
    first = take_slot(queue_dir, "w1", 2)
    second = take_slot(queue_dir, "w1", 2)
    assert first is not None and second is not None
    assert take_slot(queue_dir, "w1", 2) is None  # both held
    assert len(list(shared.glob("media-pipeline-w1-*.slot*"))) == 2
    first.release()
    again = take_slot(queue_dir, "w1", 2)
    assert again is not None
    again.release()
    second.release()


JOB = "job_p500_20260101T000000000000_remux_movie_0123456789ab"


def test_a_running_name_says_who_claimed_and_when():
    entry = RunningName.parse(f"{JOB}.ct304.4242.t1765000000")
    assert entry == RunningName(JOB, "ct304", 4242, 1765000000)
    assert entry.folder_name == f"{JOB}.ct304.4242.t1765000000"
    dotted = RunningName.parse(f"{JOB}.host.t5.lan.17.t1765000000")
    assert dotted == RunningName(JOB, "host.t5.lan", 17, 1765000000)
    # A name from a worker of an earlier release: no claim time.
    assert RunningName.parse(f"{JOB}.ct304.4242") == RunningName(JOB, "ct304", 4242, None)
    assert RunningName.parse(f"{JOB}.ct304.t1765000000") is None, "no pid"
    assert RunningName.parse(f"{JOB}.ct304.42.t17x") is None


def test_only_the_exact_form_a_claim_writes_is_a_running_name():
    for odd in (".ct304.01.t1765000000", ".ct304.1.t01765000000", ".ct304.1.t1765000000\n",
                ".ct304.1\n", "\n.ct304.1"):  # fmt: skip
        assert RunningName.parse(JOB + odd) is None, repr(odd)
    assert JobName.parse(JOB + "\n") is None


def running_folder(queue: Queue, name: str, *, beat: float | None = None, at: float) -> str:
    path = queue.folder("running", name)
    os.mkdir(path)
    if beat is not None:
        open(os.path.join(path, "heartbeat"), "w").close()
        os.utime(os.path.join(path, "heartbeat"), (beat, beat))
    os.utime(path, (at, at))
    return name


def test_silence_counts_from_the_later_of_claim_and_heartbeat_and_never_the_future(tmp_path):
    queue = Queue(str(tmp_path / "jobs"))
    queue.ensure_layout()
    now = time.time()
    waited = now - 3600  # the folder's time from pending/, kept by the rename
    pids = itertools.count(1)  # a claimer each

    def silent(claimed: int | None, **files) -> float | None:
        entry = RunningName(JOB, "ct304", next(pids), claimed)
        running_folder(queue, entry.folder_name, at=waited, **files)
        return queue.silent_seconds(entry, now, stale_after=300)

    assert silent(int(now) - 100, beat=now - 10) == pytest.approx(10)
    assert silent(int(now) - 5) == pytest.approx(5, abs=1), "claimed, no heartbeat yet"
    assert silent(int(now) - 5, beat=now - 3600) == pytest.approx(5, abs=1), "an old heartbeat"
    assert silent(int(now) - 100, beat=now + 86400) == pytest.approx(100, abs=1), "a future one"
    assert silent(int(now) + 86400) == math.inf, "nothing believable: silent as can be told"
    assert silent(int(now) + 60) == 0, "a claimer's clock a little ahead"
    assert silent(None) == pytest.approx(3600, abs=1), "a name of the last release"
    gone = RunningName(JOB, "ct304", 1, int(now))
    assert queue.silent_seconds(gone, now, stale_after=300) is None


def test_a_job_name_gives_back_the_priority_it_was_made_with():

    key = ItemKey("movie", "Heat (1995)")
    for priority in (-499, -10, 0, 7, 499):
        job_id = make_job_id("remux", key, priority, datetime(2026, 1, 1, tzinfo=UTC))
        parsed = JobName.parse(job_id)
        assert parsed is not None and parsed.priority == priority, job_id


def test_a_job_name_gives_back_when_it_was_made():

    parsed = JobName.parse("job_p500_20261207T235958123456_remux_movie_0123456789ab")
    assert parsed is not None
    assert parsed.created == datetime(2026, 12, 7, 23, 59, 58, 123456, tzinfo=UTC)
    assert JobName.parse("job_p500_20261207T245958123456_remux_movie_0123456789ab") is None

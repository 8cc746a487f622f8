"""A job's id made and taken apart by the one writer and the one parser, which the idle
shortcut reads pending/ with before anything else is loaded."""

from __future__ import annotations

import pytest

from media_pipeline.jobs.job_id import job_id_parts, job_kind, make_job_id_text

MADE = "20270115T080000000000"
UID = "0123456789ab"


def test_an_id_is_its_parts_joined_and_read_back():
    job_id = make_job_id_text(5, MADE, "remux", "movie", UID, "Heat-1995")
    assert job_id == f"job_p005_{MADE}_remux_movie_{UID}_Heat-1995"
    assert job_id_parts(job_id) == ("005", MADE, "remux", "movie", UID, "Heat-1995")
    assert job_kind(job_id) == "remux"


def test_an_id_without_words_has_no_empty_part():
    job_id = make_job_id_text(500, MADE, "rip", "tv", UID)
    assert job_id == f"job_p500_{MADE}_rip_tv_{UID}"
    assert job_id_parts(job_id) == ("500", MADE, "rip", "tv", UID, None)


def test_the_rank_is_three_digits_so_names_sort_by_it():
    ids = [make_job_id_text(rank, MADE, "remux", "movie", UID) for rank in (10, 9, 100, 0)]
    assert sorted(ids) == [ids[3], ids[1], ids[0], ids[2]]


def test_a_running_folder_name_reads_as_its_ids_parts_the_last_running_on():
    running = f"job_p005_{MADE}_transcode_movie_{UID}_Heat-1995.ct304.4242.t1800000000"
    parts = job_id_parts(running)
    assert parts == ("005", MADE, "transcode", "movie", UID, "Heat-1995.ct304.4242.t1800000000")
    assert job_kind(running) == "transcode"
    bare = f"job_p005_{MADE}_filebot_tv_{UID}.ct304.4242"
    assert job_id_parts(bare) == ("005", MADE, "filebot", "tv", f"{UID}.ct304.4242", None)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "job",
        f"job_p005_{MADE}_remux_movie",  # five parts: no uid
        f"task_p005_{MADE}_remux_movie_{UID}",
        f"job_005_{MADE}_remux_movie_{UID}",  # rank without its p
        f"job__{MADE}_remux_movie_{UID}",
        ".tmp-job_p005",
        f"Job_p005_{MADE}_remux_movie_{UID}",
    ],
)
def test_a_name_not_shaped_as_a_job_id_has_no_parts_and_no_kind(name):
    assert job_id_parts(name) is None
    assert job_kind(name) is None


def test_the_parts_are_not_checked_here():
    # The queue (JobName) checks each part; the idle shortcut only needs the shape.
    assert job_id_parts("job_pX_when_what_which_who") == ("X", "when", "what", "which", "who", None)

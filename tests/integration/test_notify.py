"""Notifications against a real HTTP server on 127.0.0.1: sent once, never fatal."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time

from conftest import run_mp

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")


def configure(pipeline, receiver_url, status_url: str | None = None, **jobs):
    """ntfy and a webhook, both to the receiver (and the status page's address, if
    given), a gate at remux_review, and jobs that fail for good at once."""
    pipeline.write_pipeline_config(
        gates=["remux_review"],
        notify={
            "ntfy_url": f"{receiver_url}/mp-topic",
            "webhook_url": f"{receiver_url}/hook",
            "timeout_seconds": 5,
            **({"status_url": status_url} if status_url else {}),
        },
        jobs={"max_attempts": 1, **jobs},
    )


def remuxed(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mark(MOVIE, "2-remuxed", "remux")


def test_an_opened_approval_is_notified_once_to_ntfy_and_the_webhook(pipeline, receiver):
    configure(pipeline, receiver.url)
    remuxed(pipeline)
    pipeline.mp("reconcile")
    pipeline.mp("reconcile")
    assert len(receiver.requests) == 2
    ntfy = next(r for r in receiver.requests if r[0] == "/mp-topic")
    assert ntfy[1]["Title"] == "Approval needed: movie/Heat (1995)"
    assert ntfy[1]["Priority"] == "3" and ntfy[1]["Tags"] == "film_projector"
    assert b"remux review" in ntfy[2] and b"mp approve" in ntfy[2]
    hook = json.loads(next(r for r in receiver.requests if r[0] == "/hook")[2])
    assert hook["event"] == "approval_opened" and hook["item"] == "movie/Heat (1995)"


def test_a_job_that_fails_for_good_is_notified_with_high_priority(pipeline, receiver):
    configure(pipeline, receiver.url)
    pipeline.write_pipeline_config(
        notify={"ntfy_url": f"{receiver.url}/mp-topic"}, jobs={"max_attempts": 1}
    )
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.mp("reconcile")
    pipeline.mp("reconcile")
    (request,) = receiver.requests
    assert request[1]["Title"] == "Failed: movie/Heat (1995)"
    assert request[1]["Priority"] == "4" and "warning" in request[1]["Tags"]
    assert b"script exited with 3" in request[2]


def test_a_failing_service_never_fails_the_command_and_is_tried_again(pipeline, receiver):
    configure(pipeline, receiver.url)
    remuxed(pipeline)
    receiver.status = 500
    result = pipeline.mp("reconcile", "-v")
    assert "notification not sent (attempt 1 of 3)" in result.stderr
    assert "remux_review approval opened" in result.stderr
    receiver.status = 200
    pipeline.mp("reconcile")
    pipeline.mp("reconcile")
    paths = [r[0] for r in receiver.requests]
    assert paths.count("/mp-topic") == 2 and paths.count("/hook") == 2


def test_an_unreachable_service_is_logged(pipeline):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(pipeline, f"http://127.0.0.1:{port}")
    remuxed(pipeline)
    result = pipeline.mp("reconcile")
    assert "notification not sent" in result.stderr
    assert pipeline.status_json()["items"][0]["pending_approval"] == "remux_review"


def test_a_retry_goes_only_to_the_service_that_failed(pipeline, receiver):
    configure(pipeline, receiver.url, STATUS_URL)
    remuxed(pipeline)
    receiver.failing_paths = {"/hook"}
    pipeline.mp("reconcile")
    receiver.failing_paths = set()
    pipeline.mp("reconcile")
    pipeline.mp("reconcile")
    assert [r[0] for r in receiver.requests] == ["/mp-topic", "/hook", "/hook"]
    # The retry is the same notification: its item, and its link to the item's section.
    first, retried = (json.loads(r[2]) for r in receiver.requests[1:])
    assert retried["item"] == first["item"] == "movie/Heat (1995)", retried
    assert retried["url"] == first["url"] == f"{STATUS_URL}#item-{MOVIE.uid[:12]}", retried


def test_many_approvals_at_once_make_one_notification(pipeline, receiver):
    configure(pipeline, receiver.url)
    for number in range(5):
        key = ItemKey("movie", f"Film {number}")
        pipeline.mark(key, "1-ripped", "rip")
        pipeline.mark(key, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    pipeline.mp("reconcile")
    ntfy = [r for r in receiver.requests if r[0] == "/mp-topic"]
    assert len(ntfy) == 1
    assert ntfy[0][1]["Title"] == "5 approvals needed"


STATUS_URL = "https://status.example/media/status.html"


def remuxes_failed(pipeline, count: int) -> None:
    """count movies whose remux fails for good, each job ended by its worker; the next
    reconcile sees them all fail at once."""
    keys = [ItemKey("movie", f"Film {number}") for number in range(count)]
    for key in keys:
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    pipeline.behave("remux", "fail")
    for _key in keys:
        pipeline.mp("claim", "--worker", "w1", expect=None)


def filed(pipeline, key=MOVIE):
    """Markers up to transcode.done; with filebot, the item is in the library."""
    pipeline.mark(key, "1-ripped", "rip")
    pipeline.mark(key, "2-remuxed", "remux")
    pipeline.mark(key, "3-transcoded", "transcode")


def test_a_notification_opens_the_status_page_at_its_section(pipeline, receiver):
    configure(pipeline, receiver.url, STATUS_URL)
    remuxed(pipeline)
    pipeline.mp("reconcile")
    # The item's own section of the page (reports/page.py's anchor for it).
    own = f"{STATUS_URL}#item-{MOVIE.uid[:12]}"
    ntfy = next(r for r in receiver.requests if r[0] == "/mp-topic")
    assert ntfy[1]["Click"] == own
    hook = json.loads(next(r for r in receiver.requests if r[0] == "/hook")[2])
    assert hook["url"] == own
    # Without a status_url: no Click, no url.
    configure(pipeline, receiver.url)
    second = ItemKey("movie", "Ronin (1998)")
    pipeline.mark(second, "1-ripped", "rip")
    pipeline.mark(second, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    ntfy, hook_request = receiver.requests[2:]
    assert ntfy[2].startswith(b"movie/Ronin (1998)") and "Click" not in ntfy[1]
    assert "url" not in json.loads(hook_request[2])


def test_a_status_url_that_is_no_web_address_is_refused_in_one_sentence(pipeline):
    pipeline.write_pipeline_config(notify={"status_url": "file:///srv/status.html"})
    result = pipeline.mp("config", "validate", expect=2)
    assert "key 'notify.status_url' must be an http:// or https:// URL" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_an_item_reaching_the_library_is_notified_once(pipeline, receiver):
    configure(pipeline, receiver.url)
    pipeline.write_pipeline_config(
        notify={"ntfy_url": f"{receiver.url}/mp-topic", "status_url": STATUS_URL}
    )
    filed(pipeline)
    # Found already filed on a first run: no news, nothing sent.
    already = ItemKey("movie", "Ronin (1998)")
    filed(pipeline, already)
    pipeline.mark(already, "3-transcoded", "transcode", "filebot")
    pipeline.mp("reconcile")
    assert receiver.requests == []
    pipeline.mark(MOVIE, "3-transcoded", "transcode", "filebot")
    pipeline.mp("reconcile")
    pipeline.mp("reconcile")
    (request,) = receiver.requests
    assert request[1]["Title"] == "In the library: movie/Heat (1995)"
    assert request[1]["Click"] == f"{STATUS_URL}#item-{MOVIE.uid[:12]}"
    assert request[1]["Priority"] == "3"


def test_many_items_filed_in_one_run_make_one_notification(pipeline, receiver):
    configure(pipeline, receiver.url)
    pipeline.write_pipeline_config(notify={"ntfy_url": f"{receiver.url}/mp-topic"})
    keys = [ItemKey("tv", "Show", f"S01 Disc{number}") for number in range(1, 6)]
    for key in keys:
        filed(pipeline, key)
    pipeline.mp("reconcile")
    for key in keys:
        pipeline.mark(key, "3-transcoded", "transcode", "filebot")
    pipeline.mp("reconcile")
    (request,) = receiver.requests
    assert request[1]["Title"] == "5 items in the library"


def test_the_failure_notification_says_what_the_script_said(pipeline, receiver):
    configure(pipeline, receiver.url)
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")  # the stand-in script says "something broke"
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.mp("reconcile")
    ntfy = next(r for r in receiver.requests if r[0] == "/mp-topic")
    assert b"(it said: something broke)" in ntfy[2]
    hook = json.loads(next(r for r in receiver.requests if r[0] == "/hook")[2])
    assert "(it said: something broke)" in hook["message"]


def unmount(pipeline):
    """The stage folders gone from staging_root, as when the share is not mounted."""
    aside = pipeline.root / f"aside{len(list(pipeline.root.glob('aside*')))}"
    aside.mkdir()
    for stage in ("1-ripped", "2-remuxed"):
        (pipeline.staging / stage).rename(aside / stage)
    return lambda: [(aside / s).rename(pipeline.staging / s) for s in ("1-ripped", "2-remuxed")]


def failing_notifications(receiver):
    return [r for r in receiver.requests if r[1].get("Title") == "Reconcile keeps failing"]


def test_reconcile_failing_three_runs_in_a_row_is_notified_once_until_it_recovers(
    pipeline, receiver
):
    configure(pipeline, receiver.url)
    pipeline.write_pipeline_config(notify={"ntfy_url": f"{receiver.url}/mp-topic"})
    remuxed(pipeline)
    pipeline.mp("reconcile")
    remount = unmount(pipeline)
    for _run in range(2):
        failed = pipeline.mp("reconcile", expect=3)
        assert "is the share mounted?" in failed.stderr
    assert failing_notifications(receiver) == []
    pipeline.mp("reconcile", expect=3)
    (request,) = failing_notifications(receiver)
    assert request[1]["Priority"] == "4"
    assert b"failed 3 runs in a row" in request[2] and b"is the share mounted?" in request[2]
    pipeline.mp("reconcile", expect=3)
    assert len(failing_notifications(receiver)) == 1
    # Counted on the controller's disk, beside the database; never on the share.
    counted = pipeline.database.parent / "reconcile-failures.json"
    assert json.loads(counted.read_text())["failures"] == 4
    assert not any("failures" in path.name for path in pipeline.staging.rglob("*"))
    remount()
    pipeline.mp("reconcile")
    assert not counted.exists()
    unmount(pipeline)
    for _run in range(3):
        pipeline.mp("reconcile", expect=3)
    assert len(failing_notifications(receiver)) == 2


def test_notify_test_sends_one_of_each_kind_to_each_service(pipeline, receiver):
    configure(pipeline, receiver.url)
    result = pipeline.mp("notify", "test")
    titles = [r[1]["Title"] for r in receiver.requests if r[0] == "/mp-topic"]
    assert titles == [
        "Test: Approval needed: movie/Example (2024)",
        "Test: Failed: movie/Example (2024)",
        "Test: In the library: movie/Example (2024)",
        "Test: Reconcile keeps failing",
    ]
    hooks = [json.loads(r[2])["event"] for r in receiver.requests if r[0] == "/hook"]
    assert hooks == ["approval_opened", "job_failed", "in_library", "reconcile_failing"]
    assert result.stdout.splitlines() == [
        f"ntfy {receiver.url}: sent gate waiting, failure, in library, reconcile failing",
        f"webhook {receiver.url}: sent gate waiting, failure, in library, reconcile failing",
    ]
    # The topic is the secret of most setups: never shown.
    assert "mp-topic" not in result.output + result.stderr
    assert not pipeline.database.exists()


def test_notify_test_says_which_service_failed_and_exits_1(pipeline, receiver):
    configure(pipeline, receiver.url)
    receiver.failing_paths = {"/hook"}
    result = pipeline.mp("notify", "test", expect=1)
    ntfy_line, hook_line = result.stdout.splitlines()
    assert ntfy_line.startswith(f"ntfy {receiver.url}: sent gate waiting")
    assert hook_line.startswith(f"webhook {receiver.url}: FAILED 4 of 4, first: HTTP Error 500")
    assert "mp: a notification service did not take" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_notify_test_without_a_service_sends_nothing_and_says_so(pipeline, receiver):
    pipeline.write_pipeline_config()
    result = pipeline.mp("notify", "test", expect=2)
    assert "no notification service is configured" in result.stderr
    assert result.stdout == "" and receiver.requests == []


def test_reconcile_failing_is_told_once_to_each_service_and_kept_in_the_runtime_folder(
    pipeline, receiver, tmp_path, monkeypatch
):
    """ntfy takes the notification, the webhook refuses it: the next failed runs ask the
    webhook again, never ntfy. Under the unit the count is in its runtime folder (memory:
    a full or read-only disk does not stop it), not beside the database."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))
    configure(pipeline, receiver.url)
    receiver.failing_paths = {"/hook"}
    remuxed(pipeline)
    pipeline.mp("reconcile")
    unmount(pipeline)
    for _run in range(6):
        pipeline.mp("reconcile", expect=3)
    told = failing_notifications(receiver)
    assert [request[0] for request in told].count("/mp-topic") == 1, told
    asked = [r for r in receiver.requests if r[0] == "/hook" and b"keeps failing" in r[2]]
    assert len(asked) == 4  # runs 3 to 6: the webhook asked again each time
    assert json.loads((runtime / "reconcile-failures.json").read_text())["failures"] == 6
    assert not (pipeline.database.parent / "reconcile-failures.json").exists()


def test_a_fifo_where_the_count_goes_does_not_hold_reconcile(pipeline, receiver):
    configure(pipeline, receiver.url)
    remuxed(pipeline)
    pipeline.mp("reconcile")
    os.mkfifo(pipeline.database.parent / "reconcile-failures.json")
    unmount(pipeline)
    result = run_mp("reconcile", "--config", str(pipeline.config_path))
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr


def test_the_status_pages_credentials_never_go_into_a_notification(pipeline, receiver):
    """Whoever reads the topic gets the link: not the page's user:password@, nor a key
    in its query."""
    configure(
        pipeline, receiver.url, "https://alice:hunter2pw@status.example:8443/s.html?key=abcdef123"
    )
    remuxed(pipeline)
    pipeline.mp("reconcile")
    sent = json.dumps([[r[0], r[1], r[2].decode()] for r in receiver.requests])
    assert "hunter2pw" not in sent and "abcdef123" not in sent and "alice" not in sent, sent
    ntfy = next(r for r in receiver.requests if r[0] == "/mp-topic")
    assert ntfy[1]["Click"].startswith("https://status.example:8443/s.html#item-"), ntfy[1]


def test_a_server_that_never_answers_holds_a_run_for_twice_its_timeout_at_most(pipeline):
    """Three jobs fail for good, and both services accept and never answer: the run
    (which holds the controller's lock) gives notifications twice timeout_seconds in all
    and records the rest failed, for the next run, rather than 3 x 2 x timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []

    def accept_forever() -> None:
        while True:
            held.append(listener.accept())

    threading.Thread(target=accept_forever, daemon=True).start()
    port = listener.getsockname()[1]
    pipeline.write_pipeline_config(
        notify={
            "ntfy_url": f"http://127.0.0.1:{port}/mp-topic",
            "webhook_url": f"http://127.0.0.1:{port}/hook",
            "timeout_seconds": 2,
        },
        jobs={"max_attempts": 1},
    )
    remuxes_failed(pipeline, 3)
    started = time.monotonic()
    result = pipeline.mp("reconcile", "-v", expect=None)
    took = time.monotonic() - started
    assert took < 2 * 2 + 3, f"the run took {took:.1f} s"  # 2 x timeout, and the run's own
    assert "this run's time for notifications is used up" in result.stderr
    listener.close()
    # What was not tried spent none of its three attempts: it is tried again, for real.
    attempts = {
        row[0]: row[1]
        for row in sqlite3.connect(pipeline.database).execute(
            "SELECT last_error, attempts FROM notifications"
        )
    }
    assert any("not tried" in error and count == 0 for error, count in attempts.items()), attempts


def test_many_jobs_failing_in_one_run_make_one_notification(pipeline, receiver):
    configure(pipeline, receiver.url)
    remuxes_failed(pipeline, 5)
    pipeline.mp("reconcile")
    failed = [r for r in receiver.requests if r[0] == "/mp-topic" and "failed" in r[1]["Title"]]
    assert [r[1]["Title"] for r in failed] == ["5 items failed"], failed
    assert failed[0][1]["Priority"] == "4"


def test_a_mistyped_ntfy_url_is_said_without_its_topic(pipeline):
    """The topic is the secret of most ntfy users: an error about the URL shows the host."""
    pipeline.write_pipeline_config(notify={"ntfy_url": "https://ntfy.sh/my-secret topic"})
    result = run_mp("config", "validate", "--config", str(pipeline.config_path))
    assert result.returncode == 2, result.stderr
    assert "'https://ntfy.sh/...'" in result.stderr and "secret" not in result.stderr

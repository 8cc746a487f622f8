"""The status page in a real browser: headless Chromium (Debian's package) loads the
page `mp status --html` writes, runs its script, and the test reads what it rendered:
the items (hostile titles shown as text, never as markup), the approval with its
command, the running job with its log, the failure with what `mp why` says, the
charts. A screenshot is kept in test-artifacts/ for a person to look at."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FAKE_SCRIPT, claim_in_background, earlier_copy_id

from media_pipeline.items.names import ItemKey

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = '"><img src=x onerror=alert(1)>'

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def browser(*args: str, page: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None  # the module is skipped without it
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-dev-shm-usage", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def busy(pipeline):
    """A pipeline with something in every part of the page."""
    pipeline.write_pipeline_config(
        gates=["filebot_confirm"],
        notify={"ntfy_url": "http://127.0.0.1:9/topic", "ntfy_token": "tk_SECRET_TOKEN_7"},
    )
    pipeline.mp("reconcile")  # the database
    pipeline.mp("rip", "--type", "movie", "--title", HOSTILE)
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.mp("rip", "--type", "tv", "--title", "Lost (2004)", "--disc-label", "S01 Disc1")
    for _ in range(3):  # each rip, then remux and transcode of the first two
        pipeline.mp("claim", "--worker", "w1")
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")
    for _ in range(8):
        pipeline.mp("claim", "--worker", "w1")
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")
    pipeline.mp("approve", "movie/Heat (1995)", "--reject", "--reason", "the wrong cut <b>")
    pipeline.mp("reconcile")
    # A title made on the share with a right-to-left override in it.
    reversed_title = ItemKey("movie", "abc\u202edcba (2001)")
    pipeline.mark(reversed_title, "1-ripped", "rip")
    pipeline.mark(reversed_title, "2-remuxed", "remux")
    pipeline.mark(reversed_title, "3-transcoded", "transcode", "filebot")  # in the library
    pipeline.mp("reconcile")
    return pipeline


def test_the_page_in_a_browser(busy, tmp_path):
    page = tmp_path / "status.html"
    status = busy.status_json()
    states = {item["title"]: item["state"] for item in status["items"]}
    assert states[HOSTILE] == "TRANSCODED", states  # waits at filebot_confirm
    busy.behave("remux", "wait")
    # A remux that says what it does before it waits: its log's last lines are shown.
    # 200 kB of it first: the page shows a long log's end, not nothing.
    said = "seq 1 20000 | sed 's/^/remux line /'\necho 'remux: 41% <done>'\n"
    chatty = FAKE_SCRIPT.replace("set -u\n", "set -u\n" + said, 1)
    (busy.root / "scripts" / "remux.sh").write_text(chatty)
    busy.mp("rip", "--type", "movie", "--title", "Ronin (1998)")
    busy.mp("claim", "--worker", "w1")
    busy.mp("reconcile")
    busy.mp("dispatch")
    running = busy.staging / ".pipeline" / "jobs" / "running"

    def said_it() -> bool:  # the worker copies the script's output into the job's log
        logs = list(running.glob("*remux*Ronin*/log"))
        return bool(logs) and b"41% <done>" in logs[0].read_bytes()

    worker = claim_in_background(busy, said_it)
    try:
        busy.mp("reconcile")  # sees the job running, as the controller's next run would
        busy.mp("status", "--html", str(page))
        # The file first: an unescaped title would run its handler in the browser, whose
        # alert() holds a headless Chromium until the browser's timeout.
        text = page.read_text()
        assert "<img" not in text, "a title on the page became an element"
        assert html.escape(HOSTILE) in text
        dom = browser("--dump-dom", "--virtual-time-budget=2000", page=page).stdout
        ARTIFACTS.mkdir(exist_ok=True)
        shot = browser("--window-size=1280,2600", f"--screenshot={ARTIFACTS / 'status-page.png'}",
                       page=page)  # fmt: skip
        assert (ARTIFACTS / "status-page.png").stat().st_size > 10_000, shot.stderr[-2000:]
    finally:
        (busy.root / "release").touch()
        worker.wait(60)
    assert "tk_SECRET_TOKEN_7" not in text and "127.0.0.1:9" not in text
    # The hostile title is text on the page, never an element.
    assert "<img" not in dom and dom.count("<script>") == 1, dom[:3000]
    assert 'movie/"&gt;&lt;img src=x onerror=alert(1)&gt;' in dom  # the DOM's text, serialized
    # Ages, made by the page's own script from the UTC timestamps.
    assert re.search(r"<time [^>]*>\d+ s ago</time>", dom), dom[:3000]
    # What waits for a person, with the command that decides it.
    uid = next(i["uid"] for i in busy.status_json()["items"] if i["title"] == HOSTILE)
    assert f"mp approve {uid[:12]} --yes" in dom and "filebot_confirm" in dom
    # The running job: its worker and its log.
    assert "remux</b> of <b>movie/Ronin (1998)</b> on <b>w1</b>" in dom
    assert "remux: 41% &lt;done&gt;" in dom
    assert "remux line 20000" in dom and "remux line 19000" not in dom, "the last lines"
    # The override is shown escaped, as the terminal shows it: it turns nothing around.
    assert "\u202e" not in dom and "abc\\u202edcba (2001)" in dom
    # The stopped item, its reason and what 'mp why' says of it.
    assert "A person rejected it" in dom and "the wrong cut &lt;b&gt;" in dom
    # Seasons and the three charts.
    assert "Lost (2004), season 1" in dom and "S01 Disc1" in dom
    assert dom.count("<svg") == 3 and "Time per stage" in dom and "Compression per item" in dom
    assert "Jobs of the last day, per worker" in dom
    assert "<title>remux (running)</title>" in dom, "the running job is on the timeline too"


def test_reconcile_rewrites_the_page_of_the_config(pipeline, tmp_path):
    page = tmp_path / "www" / "mp.html"
    page.parent.mkdir()
    pipeline.write_pipeline_config(status_page=str(page))
    pipeline.mp("reconcile")  # the database
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.mp("reconcile")
    first = page.read_text()
    assert "movie/Heat (1995)" in first and "RIPPING" in first
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    assert "RIPPED" in page.read_text()
    assert [p.name for p in page.parent.iterdir()] == ["mp.html"], "no temporary left behind"
    # A page that cannot be written is a warning; reconcile itself succeeds.
    pipeline.write_pipeline_config(status_page=str(tmp_path / "gone" / "mp.html"))
    result = pipeline.mp("reconcile")
    assert "status page" in result.stderr and "not written" in result.stderr


def test_status_html_into_a_folder_that_is_not_there_is_one_sentence(pipeline, tmp_path):
    pipeline.mp("reconcile")
    result = pipeline.mp("status", "--html", str(tmp_path / "nowhere" / "x.html"), expect=2)
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_a_forged_job_result_stops_neither_reconcile_nor_the_page(pipeline, tmp_path):
    page = tmp_path / "mp.html"
    pipeline.write_pipeline_config(status_page=str(page))
    pipeline.mp("reconcile")  # the database
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.mp("claim", "--worker", "w1")
    completed = pipeline.staging / ".pipeline" / "jobs" / "completed"
    [done] = completed.iterdir()
    forged = completed / earlier_copy_id(done.name)
    shutil.copytree(done, forged)
    result = json.loads((forged / "result.json").read_text())
    result.update(seconds=1e15, finished_at="9999-12-31T00:00:00+00:00")
    (forged / "result.json").write_text(json.dumps(result))
    out = pipeline.mp("reconcile")  # exit 0, and no warning about the page
    assert "status page" not in out.stderr, out.stderr
    assert "Jobs of the last day, per worker" in page.read_text()


def on_a_phone(tmp_path: Path, measure: str) -> str:
    """The DOM of a page that shows mp.html (beside it in tmp_path) at a phone's 390 px
    and runs measure (JavaScript, `d` the page's document) once it is laid out: headless
    Chromium lays a window out at 500 px at least, hence the frame."""
    phone = tmp_path / "phone.html"
    phone.write_text(
        '<html><body><iframe id="f" src="mp.html" style="width:390px;height:844px;border:0">'
        "</iframe><script>document.getElementById('f').onload = function(){"
        f" var d = this.contentDocument;{measure} }};</script></body></html>"
    )
    dom = browser("--allow-file-access-from-files", "--dump-dom", "--virtual-time-budget=3000",
                  page=phone)  # fmt: skip
    return dom.stdout + dom.stderr[-2000:]


def test_on_a_phone_the_charts_are_readable_and_only_they_scroll(pipeline, tmp_path):
    pipeline.mp("reconcile")  # the database
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    page = tmp_path / "mp.html"
    pipeline.mp("status", "--html", str(page))
    measured = on_a_phone(
        tmp_path,
        " var t = d.querySelector('svg text').getBoundingClientRect();"
        " document.body.dataset.measured = [t.height, d.documentElement.scrollWidth,"
        " d.documentElement.clientWidth].join(' ');",
    )
    found = re.search(r'data-measured="([\d.]+) (\d+) (\d+)"', measured)
    assert found, measured[:2000]
    label_height, page_width, frame_width = map(float, found.groups())
    assert frame_width == 390
    assert label_height >= 12, "a chart's labels as large as the page's small print"
    assert page_width <= frame_width, "the page itself never scrolls sideways"


# A remux that fails as ffmpeg does: long lines, the error at the end.
LONG_FAILURE = (
    "#!/usr/bin/env bash\n"
    "echo \"Input #0, matroska,webm, from 'title_t00.mkv': Duration: 01:52:07.04, start: "
    '0.000000, bitrate: 28001 kb/s"\n'
    'echo "Error while decoding stream #0:1: Invalid data found when processing input; '
    'the_disc_image_is_damaged_beyond_repair_near_sector_1234567"\n'
    "exit 1\n"
)


def test_on_a_phone_a_failure_fits_and_leads_to_the_items_own_section(pipeline, tmp_path):
    """At 390 px the failures need no sideways scrolling; each names its item with a
    link to the item's own section, which holds its history, its job now and the end
    of its failed job's log."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    (pipeline.scripts / "remux.sh").write_text(LONG_FAILURE)
    pipeline.mp("reconcile")
    pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile", "--dispatch")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.mp("reconcile")
    [item] = pipeline.status_json()["items"]
    assert item["state"] == "FAILED"
    anchor = f"item-{item['uid'][:12]}"
    page = tmp_path / "mp.html"
    pipeline.mp("status", "--html", str(page))
    measured = on_a_phone(
        tmp_path,
        " var f = d.getElementById('failures');"
        f" var own = d.getElementById('{anchor}');"
        " var link = f.querySelector('a');"
        # A table in a box of its own that scrolls sideways counts as not fitting.
        " var wide = Array.from(f.querySelectorAll('*')).filter(function(el){"
        "  var o = getComputedStyle(el).overflowX;"
        "  return (o == 'auto' || o == 'scroll') && el.scrollWidth > el.clientWidth; }).length;"
        " document.body.dataset.measured = [f.scrollWidth + 1000 * wide, f.clientWidth,"
        " d.documentElement.scrollWidth, d.documentElement.clientWidth].join(' ');"
        " document.body.dataset.link = link ? link.getAttribute('href') : '';"
        " document.body.dataset.own = own ? own.textContent : '';",
    )
    found = re.search(r'data-measured="(\d+) (\d+) (\d+) (\d+)"', measured)
    assert found, measured[:2000]
    section_scroll, section_width, page_scroll, page_width = map(int, found.groups())
    assert page_width == 390
    assert section_scroll <= section_width and page_scroll <= page_width, found.groups()
    assert f'data-link="#{anchor}"' in measured, measured[:3000]
    found_own = re.search(r'data-own="([^"]*)"', measured)
    assert found_own, measured[:3000]
    own = html.unescape(found_own.group(1))
    assert "Heat (1995)" in own and "-> FAILED" in own, own
    assert "no job in the queue" in own and "beyond_repair_near_sector_1234567" in own, own

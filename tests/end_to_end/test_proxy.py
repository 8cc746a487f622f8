"""Notifications through a real reverse proxy (nginx, as many put in front of ntfy): a
long non-ASCII title passes as one header line and arrives whole, the body as text/plain.
nginx refuses a folded header line, as the title once was sent."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from email.header import decode_header, make_header

import pytest

from media_pipeline.notify.events import Event
from media_pipeline.notify.send import notify
from media_pipeline.store import controller_database

pytestmark = pytest.mark.skipif(
    not shutil.which("nginx"), reason="nginx is not installed (make test installs it)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def proxy(tmp_path, receiver):
    """nginx on a free port of 127.0.0.1, passing everything to the receiver."""
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    temp = " ".join(
        f"{name}_temp_path {prefix}/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; {temp}\n"
        f"  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass {receiver.url}; }} }} }}\n"
    )
    server = subprocess.Popen(["nginx", "-c", str(prefix / "nginx.conf"), "-p", str(prefix)])
    deadline = time.monotonic() + 30
    while True:  # until nginx accepts connections (or has died)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((prefix / "error.log").read_text()) from None
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


def test_a_long_non_ascii_title_passes_the_proxy_as_one_line(pipeline, receiver, proxy):
    pipeline.write_pipeline_config(notify={"ntfy_url": f"{proxy}/topic"})
    title = ("Amélie — Le fabuleux destin 東京物語 " * 12)[:400]
    pipeline.mp("reconcile")  # the database
    config = pipeline.config
    with controller_database(config) as db:
        notify(config, db, Event("test:1", "test", title, "Ünïcode body ✓", "movie/x"))
        [row] = db.query("SELECT status, last_error FROM notifications")
    assert row["status"] == "sent", row["last_error"]
    [(path, headers, body)] = receiver.requests
    assert path == "/topic"
    assert str(make_header(decode_header(headers["Title"]))) == title
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode("utf-8") == "Ünïcode body ✓"


def test_the_proxy_refuses_a_folded_header(proxy, receiver):
    """What a title folded across lines (as email.header once made it) gets: a 400 from
    the proxy, and nothing reaches ntfy."""
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /topic HTTP/1.1\r\nHost: x\r\nTitle: =?utf-8?b?QW3DqWxpZQ==?=\r\n"
            b" =?utf-8?b?QW3DqWxpZQ==?=\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert receiver.requests == []

"""A real HTTP server on 127.0.0.1 for the notification tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A local HTTP server as strict as a proxy in front of ntfy. Records every request.
    Answers 400 to a header holding CR or LF (a folded or injected header, which proxies
    refuse), 500 on the paths in `failing_paths`, a redirect to /elsewhere on those in
    `redirecting`, and `status` otherwise."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.redirecting: set[str] = set()
        self.failing_paths: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers)
                receiver.requests.append((self.path, headers, body))
                if any("\r" in value or "\n" in value for value in headers.values()):
                    self.send_response(400)
                elif self.path in receiver.failing_paths:
                    self.send_response(500)
                elif self.path in receiver.redirecting:
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                else:
                    self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def paths(self) -> list[str]:
        return [path.split("?")[0] for path, _headers, _body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

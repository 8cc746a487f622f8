"""One POST to a notification service: credentials taken out of the URL, redirects
refused, the whole answer within the timeout; and the part of a URL that may be shown."""

from __future__ import annotations

import base64
import http.client
import re
import time
import urllib.parse
import urllib.request

from media_pipeline.logs import HIDDEN


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """POST body to url; raises one of SEND_ERRORS when the service did not take it."""
    url, basic = _split_credentials(url)
    if basic and not any(name.lower() == "authorization" for name in headers):
        headers = {**headers, "Authorization": basic}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(RefuseRedirects)
    # urllib's timeout is for each wait; a server that sends its answer a byte at a time
    # would never reach it. The whole answer gets timeout too.
    deadline = time.monotonic() + timeout
    with opener.open(request, timeout=timeout) as response:
        while response.read(4096):
            if time.monotonic() > deadline:
                raise TimeoutError("the answer took longer than timeout_seconds")


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is reported as the error it is, not followed: urllib would carry the
    Authorization header (or a key in the query) to wherever it points, another host
    included, and turn a POST into a GET that drops the message. The notifications and
    the TMDB client (library/tmdb.py) both open with it."""

    def redirect_request(self, *args, **kwargs):
        return None


def _split_credentials(url: str) -> tuple[str, str | None]:
    """url without its user:password@ part, and that part as a Basic Authorization
    value: urllib cannot send it from the URL (it takes it for part of the host name)."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _colon, password = userinfo.partition(":")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), basic_authorization(
        urllib.parse.unquote(user), urllib.parse.unquote(password)
    )


def basic_authorization(user: str, password: str) -> str:
    """An Authorization header's value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# What a failed POST raises: OSError covers URLError and HTTPError, HTTPException a
# server that answers something other than HTTP, ValueError a URL urllib refuses.
SEND_ERRORS = (OSError, ValueError, http.client.HTTPException)


def split_origin(url: str) -> tuple[str, str]:
    """(scheme://host[:port], the rest: path, query and fragment) of url, without its
    user:password@. Only the origin is ever shown: the ntfy topic, or the id in a
    webhook's path, is the secret of most setups (whoever knows it reads the
    notifications, or sends false ones), as much as a token is."""
    scheme, separator, after = url.partition("://")
    authority = re.split(r"[/?#]", after, maxsplit=1)[0]
    rest = after[len(authority) :]
    host = authority.rpartition("@")[2]
    return (f"{scheme}://{host}" if separator else HIDDEN), (rest if separator else url)

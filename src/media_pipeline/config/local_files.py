"""The files a host trusts (its database, keys, scripts, status page), kept off the share.

Whoever writes the share (three hosts, their scripts, anyone with access to it) must
not write, nor read, what a host trusts: each such path is refused inside
staging_root or library_root, as written and, on the host itself, with its links
resolved.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from media_pipeline.config.hosts import ITEM_TYPES, ScriptSpec
from media_pipeline.share.files import relative_parts

# What each file that must stay off the share is, and what to do about it. Whoever
# writes the share (three hosts, their scripts, anyone with access to it) must not
# write, nor read, what a host trusts.
_KEEP_LOCAL = {
    "database": "keep the database on the controller's local disk: SQLite is not safe on "
    "a network share, and whoever writes the share could rewrite it (and decision.key "
    "beside it)",
    "decision_key": "keep it on the controller's local disk: whoever reads it can sign decisions",
    "signing_key": "keep it on this host's local disk: whoever reads it can sign jobs",
    "trusted_keys": "keep it on this host's local disk: whoever writes it chooses whose jobs run",
    "status_page": "keep the page on the controller's local disk (a web server's folder): "
    "whoever writes the share could swap the folder it goes into for a link, and reconcile "
    "would write there",
    "scripts": "keep the scripts on each host's local disk ('mp scripts install' copies "
    "the reference ones to /opt/media/scripts): whoever writes the share could change "
    "what every worker runs",
}


def roots(values: dict) -> dict[str, str]:
    return {key: values[key] for key in ("staging_root", "library_root") if values.get(key)}


def local_paths(
    database: str | None,
    decision_key: str | None,
    keys: dict[str, str | None],
    scripts: dict[str, dict[str, ScriptSpec]] | None,
) -> list[tuple[str, str, str]]:
    """(key, path, what the key is) of every file that must stay off the share, the
    database first."""
    found = [
        (key, path, key)
        for key, path in (("database", database), ("decision_key", decision_key), *keys.items())
        if path
    ]
    for kind, per_type in (scripts or {}).items():
        one_for_both = len({spec.path for spec in per_type.values()}) == 1 and len(per_type) > 1
        for item_type, spec in per_type.items():
            if one_for_both and item_type != ITEM_TYPES[0]:
                continue
            key = f"scripts.{kind}" if one_for_both else f"scripts.{kind}.{item_type}"
            found.append((f"{key}.path", spec.path, "scripts"))
    return found


def off_the_share_problems(
    roots: dict[str, str],
    local_paths: list[tuple[str, str, str]],
    resolve: Callable[[str], str] | None,
) -> list[str]:
    """A sentence for each of local_paths inside a root. With resolve (os.path.realpath,
    on the host itself), both sides are compared with their links resolved: a database
    at /var/lib/mp/state.db where /var/lib/mp links into staging is on the share."""
    found = []
    database_folder = None
    resolved_roots = {key: resolve(root) if resolve else root for key, root in roots.items()}
    for key, path, what in local_paths:
        if what != "scripts" and os.path.dirname(path) == database_folder:
            continue  # a key beside a database already refused (decision.key): said once
        resolved = resolve(path) if resolve else path
        for root_key, root in resolved_roots.items():
            if relative_parts(root, resolved) is None:
                continue
            through = f" (through a link: {resolved})" if resolved != path else ""
            found.append(
                f"key '{key}' ({path}) is inside {root_key}, on the share{through}; "
                f"{_KEEP_LOCAL[what]}"
            )
            if key == "database":
                database_folder = os.path.dirname(path)
            break
    return found

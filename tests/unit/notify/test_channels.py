"""The notification channels: one module each, and the registry that the config's notify
block, NotifySettings, the secrets and sending are made from."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from media_pipeline.config.checks import secret_path_url
from media_pipeline.config.schema import setting_at
from media_pipeline.config.settings import NotifySettings
from media_pipeline.notify.channels import CHANNELS, configured

SHARED = ("timeout_seconds", "status_url")


def test_the_notify_block_is_each_channels_settings_then_what_they_share():
    keys = [setting.key for setting in setting_at("notify").children]
    expected = [setting.key for channel in CHANNELS for setting in channel.SETTINGS]
    assert keys == [*expected, *SHARED]
    assert [channel.NAME for channel in CHANNELS] == ["ntfy", "webhook"]


def test_a_channels_settings_are_named_for_it_and_its_url_is_shown_by_host_only():
    for channel in CHANNELS:
        keys = [setting.key for setting in channel.SETTINGS]
        assert all(key.startswith(channel.NAME + "_") for key in keys), keys
        (url,) = [s for s in channel.SETTINGS if s.key == channel.URL_KEY]
        assert url.check is secret_path_url and url.default is None


def test_a_channel_is_on_when_its_url_is_set():
    settings = NotifySettings(webhook_url="http://hook.example/abc")
    assert [(channel.NAME, url) for channel, url in configured(settings)] == [
        ("webhook", "http://hook.example/abc")
    ]
    assert configured(NotifySettings()) == []


# A channel of its own, as a new one would be written: its module and its line in the
# registry are all it takes.
PAGER = """
from media_pipeline.config.checks import Setting, secret_path_url

NAME = "pager"
URL_KEY = "pager_url"
SETTINGS = (
    Setting("pager_url", "A pager.", None, secret_path_url, default=None),
    Setting("pager_key", "Its key.", None, lambda value, key, problems: value,
            default=None, secret=True),
)


def credential_problems(given, notify):
    if "pager_url" in given and "pager_key" not in given:
        return ["key 'notify.pager_key' is missing"]
    return []


def request(settings, event):
    return event.title.encode(), {"X-Key": settings.pager_key}
"""

USE_IT = """
import media_pipeline.notify.channels as registry, pager
registry.CHANNELS = (*registry.CHANNELS, pager)  # the registry's new line

from media_pipeline.config.load import parse_config
from media_pipeline.config.output import reference_markdown
from media_pipeline.errors import ConfigError
from media_pipeline.notify.events import test_events
from media_pipeline.notify.send import channels, send

roots = {"staging_root": "/mnt/s", "library_root": "/mnt/l"}
try:
    parse_config({**roots, "notify": {"pager_url": "http://127.0.0.1:9/p"}}, "c")
except ConfigError as error:
    print(error.problems)
notify = {"pager_url": "http://127.0.0.1:9/topic", "pager_key": "a-pager-secret"}
config = parse_config({**roots, "notify": notify}, "c")
print(channels(config.notify))
print("a-pager-secret" in config.notify.secrets, "a-pager-secret" in repr(config))
print("`notify.pager_key`" in reference_markdown())
print(send(config, test_events()[0])["pager"].startswith("pager http://127.0.0.1:9: "))
"""


def test_a_new_channel_is_one_module_and_its_line_in_the_registry(tmp_path):
    (tmp_path / "pager.py").write_text(PAGER)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(USE_IT)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[\"key 'notify.pager_key' is missing\"]",
        "[('pager', 'http://127.0.0.1:9')]",
        "True False",
        "True",
        "True",
    ]


def test_each_module_of_config_and_notify_may_be_imported_first():
    """The schema imports the channels and the channels import config/checks.py: each
    module imported first, in a fresh process, must find the other side whole."""
    import media_pipeline

    package = Path(media_pipeline.__file__).parent
    names = sorted(
        "media_pipeline." + ".".join(path.relative_to(package).with_suffix("").parts)
        for part in ("config", "notify")
        for path in (package / part).glob("*.py")
    )
    for name in names:
        name = name.removesuffix(".__init__")
        result = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"

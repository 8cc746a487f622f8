"""The channels a notification goes by, one module each: a new channel is a module like
ntfy.py and its line in CHANNELS.

The config's notify block is made of the channels' settings (config/schema.py), so this
module and the channels' are imported with the config: they import nothing that only
sending needs until they send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from media_pipeline.notify import ntfy, webhook

if TYPE_CHECKING:
    from media_pipeline.config.checks import Setting
    from media_pipeline.config.settings import NotifySettings
    from media_pipeline.notify.events import Event


class Channel(Protocol):
    """What a channel's module holds."""

    # Its name where a person reads it (`mp notify test`, the log).
    NAME: str
    # Its setting that turns it on, and where it posts (an http(s) URL).
    URL_KEY: str
    # Its part of the config's notify block, keys starting with NAME; a secret's value
    # is never shown (Setting.secret).
    SETTINGS: tuple[Setting, ...]

    def credential_problems(self, given: set[str], notify: dict[str, Any]) -> list[str]:
        """A sentence for each pair of its settings that cannot go together; given:
        the keys the file's notify block sets, notify: the block's checked values."""
        ...

    def request(self, settings: NotifySettings, event: Event) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the POST that tells it of event."""
        ...


CHANNELS: tuple[Channel, ...] = (ntfy, webhook)


def configured(settings: NotifySettings) -> list[tuple[Channel, str]]:
    """Each channel the config turns on, with its URL."""
    return [
        (channel, getattr(settings, channel.URL_KEY))
        for channel in CHANNELS
        if getattr(settings, channel.URL_KEY)
    ]

"""Telling a person: an approval waits, a job failed for good, an item reached the
library, reconcile keeps failing.

- `events.py`: every kind of event, and where its notification leads.
- `send.py`: each event sent once to every channel, recorded in the database and
  tried again on a later run; `mp notify test`.
- `post.py`: one POST to a service, and the part of its URL that may be shown.
- `channels.py`: the channels, one module each: `ntfy.py`, `webhook.py`.

Nothing is imported here: the config's schema imports the channels' settings, and a
run that sends nothing imports nothing else of this package.
"""

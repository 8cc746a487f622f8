"""The configuration file, described once in a schema from which come validation, the
example and the reference.

- `checks.py`: what a setting is, and the checkers of values.
- `hosts.py`: which host runs what: workers, scripts, windows; this host's name.
- `schema.py`: SCHEMA, every setting with its help, example, checker and default.
- `settings.py`: Config and its blocks, as the code reads them; defaults from SCHEMA.
- `load.py`: `load_config` and `parse_config`: a file read and checked, every problem
  at once, naming the key.
- `local_files.py`: the files a host trusts, refused on the share.
- `host_warnings.py`: what this host lacks of a valid config (`mp config validate`).
- `output.py`: `mp config example` and docs/configuration.md, from SCHEMA.

Nothing is imported here: the notify block's settings are the channels' own
(notify/ntfy.py, ...), which import checks.py; a package that imported everything
when a channel is imported first would find that channel half made.
"""

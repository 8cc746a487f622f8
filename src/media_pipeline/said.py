"""What a command's `run_*` function returns when it is told in sentences: the text that
cli.py prints, as data. Reports return their own data (`StatusReport`, `Stats`, ...) and
cli.py formats them; no `run_*` returns a bare string."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Said:
    message: str

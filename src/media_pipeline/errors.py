"""The errors a user can cause or meet, each with the exit code DESIGN section 2 gives it.

The CLI turns every one of these into one sentence on stderr; anything else is a bug and
keeps its traceback.
"""


class PipelineError(Exception):
    """An operation failed (a job failed, a script is missing): exit 1."""

    exit_code = 1


class UsageError(PipelineError):
    """The command was asked for something that cannot be (an unknown item, say): exit 2."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration file is wrong; carries every problem found, not only the first."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{path}: {self.problems[0]}"
        else:
            listed = "\n".join(f"  - {problem}" for problem in self.problems)
            message = f"{path}: {len(self.problems)} problems:\n{listed}"
        super().__init__(message)


class SafetyRefusal(PipelineError):
    """Refused because going on could lose data (root not mounted, lock held): exit 3."""

    exit_code = 3

"""The job queue and the commands that use it: dispatch, claim, cancel, retry, rip."""

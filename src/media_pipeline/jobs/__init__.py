"""The job queue as both sides read it: its folders, a job's spec and its signature, the
keys, the controller's live list, a job's outcome, and the drain flag."""

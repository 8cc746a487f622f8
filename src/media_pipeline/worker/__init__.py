"""A worker's side of the queue: claim a job, check it, run its script confined and
guarded, record the outcome. Nothing here decides what an item needs next."""

"""Read-only reports: status, why, stats, history and the job list. None of them writes."""

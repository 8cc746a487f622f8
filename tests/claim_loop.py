"""Helper process for the concurrency tests: claim jobs as WORKER until none is left.

python claim_loop.py CONFIG WORKER  ->  prints how many jobs it ran
"""

import sys

from media_pipeline.config import load_config
from media_pipeline.jobs.claim import run_claim


def main() -> None:
    config = load_config(sys.argv[1])
    ran = 0
    while True:
        result = run_claim(config, sys.argv[2])
        if result.job_id is None:
            break
        ran += 1
    print(ran)


if __name__ == "__main__":
    main()

"""Allow `python -m media_pipeline`."""

from media_pipeline.cli import main

main()

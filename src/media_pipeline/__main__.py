"""Allow `python -m media_pipeline`."""

from media_pipeline.entry import main

main()

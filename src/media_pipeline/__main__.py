"""Allow `python -m media_pipeline`."""

from media_pipeline.idle.entry import main

main()

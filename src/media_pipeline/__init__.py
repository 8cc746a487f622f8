"""media-pipeline: the control plane for a home media pipeline."""

__version__ = "0.1.0"

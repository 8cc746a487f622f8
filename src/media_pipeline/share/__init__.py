"""The shared filesystem as a trust boundary: the one layer that opens files there, the
share's identity, the markers in an item's folders, and filesystem facts."""

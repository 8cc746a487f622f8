"""The library: Plex names, seasons of discs, what each file becomes, where a filing job
may write, what a disc and an item's folder hold, and moving what was filed."""

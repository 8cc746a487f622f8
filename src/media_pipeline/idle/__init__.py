"""The idle shortcut: a timer run with nothing to do is answered before click, yaml or
sqlite are imported (entry.py decides, quick.py reads the little it needs)."""

"""The approval gates: their records (gates.py, signed with signing.py), and `mp approve`
asking a person at each open gate (session.py, terminal.py, refile.py)."""

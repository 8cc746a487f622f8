"""`mp approve`: asking a person at each open gate (the records themselves are gates.py)."""

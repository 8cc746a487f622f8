"""Approval gates: opening them, asking a person, recording decisions that survive."""

"""Reconcile: bring the database in line with the markers on the filesystem."""

from media_pipeline.reconcile.run import ReconcileResult, run_reconcile

__all__ = ["ReconcileResult", "run_reconcile"]

"""Preflight: checks that a model and its data can train, before any tuning or real training."""

from trainwise.checks.preflight import preflight

__all__ = ["preflight"]

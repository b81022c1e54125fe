"""Kernel models: events."""

__all__: list[str] = []

"""Kernel models: keys."""

__all__: list[str] = []

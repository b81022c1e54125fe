"""Kernel models: notify."""

__all__: list[str] = []

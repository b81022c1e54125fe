"""Kernel models: audit."""

__all__: list[str] = []

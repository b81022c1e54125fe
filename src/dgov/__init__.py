"""dgov: a provincial digital government platform."""

__version__ = "0.1.0"

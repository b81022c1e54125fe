"""Template tags of one-stop services."""

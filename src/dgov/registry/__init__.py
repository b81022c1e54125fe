"""Base information libraries (基础库): population, legal entities and more."""

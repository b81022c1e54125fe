"""Tests of one-stop services (一网通办)."""

"""Unified identity: accounts of persons, enterprises and officials."""

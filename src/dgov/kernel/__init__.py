"""Shared kernel: divisions, organizations, audit chain, crypto, validators, calendar, events."""

"""Fixtures of the entity-resolution tests: small labelled benchmarks, generated once per session."""

import pytest

from dgov.linkage import synth


@pytest.fixture(scope="session")
def link_benchmark():
    """Two departments, 3,000 and 2,400 rows, 1,800 true links (the generator's default error rates)."""
    return synth.generate_link(3000, 2400, seed=7)


@pytest.fixture(scope="session")
def dedupe_benchmark():
    """One table of 3,000 rows with about 30 % of the persons recorded two or three times."""
    return synth.generate_dedupe(3000, seed=7)

"""Settings of a second dgov started by tests (``instances.Instance(no_migrations=True)``): tables from the models."""

from dgov.settings import *  # noqa: F403


class _NoMigrations:
    """Every app is treated as unmigrated, so ``migrate --run-syncdb`` creates its tables from the models."""

    def __contains__(self, app_label) -> bool:
        return True

    def __getitem__(self, app_label):
        return None


MIGRATION_MODULES = _NoMigrations()

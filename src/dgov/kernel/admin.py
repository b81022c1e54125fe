"""Admin registrations of the shared kernel, one module per concern."""

from dgov.kernel import admin_audit, admin_events, admin_org  # noqa: F401

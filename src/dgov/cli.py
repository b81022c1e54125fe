"""The ``dgov`` command: Django management commands under one name.

``dgov demo``, ``dgov audit verify``, ``dgov serve``, ``dgov worker`` … are the management
commands of dgov's apps; every other Django command (``migrate``, ``createsuperuser``) works too.
"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a management command with dgov's settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["dgov", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()

"""WSGI entry point: ``dgov.wsgi:application``, served by Granian (``dgov serve``, :mod:`dgov.server`).

Two WSGI middlewares sit in front of Django: the access log (request id, clean environ, one JSON
line per request) outermost, then the registry read fast path, which answers API clients' reads of
one record by uid without the Django request stack and passes everything else on (ADR 0013).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
django_application = get_wsgi_application()

from dgov.kernel.observability import AccessLogApp  # noqa: E402 - Django is set up by now
from dgov.registry.fastread import RegistryReadFastPath  # noqa: E402

application = AccessLogApp(RegistryReadFastPath(django_application))

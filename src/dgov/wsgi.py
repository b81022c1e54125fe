"""WSGI entry point (gunicorn serves ``dgov.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
application = get_wsgi_application()

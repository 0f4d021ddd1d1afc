"""WSGI entry point (gunicorn recsite.wsgi): Django, with the hot API paths' shorter
middleware chain (recsite.handlers)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
django.setup(set_prefix=False)

from recsite.handlers import RecsiteWSGIApplication  # noqa: E402  (needs the settings)

application = RecsiteWSGIApplication()

"""
WSGI config for presetsite project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

from presetsite import data_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "presetsite.settings")

application = get_wsgi_application()
data_dir.create()

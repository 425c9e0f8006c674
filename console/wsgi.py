import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()
# Everything imported so far lives as long as the process: keep it out of the cyclic garbage
# collector's full passes (several hundred thousand objects, tens of milliseconds each, which
# would land on whichever request triggers them). Before gunicorn forks (--preload), this
# also keeps those pages shared between its workers.
gc.freeze()

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the administrator account if missing. The password comes from "
        "SWITCHYARD_ADMIN_PASSWORD, or is generated and printed once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("SWITCHYARD_ADMIN_USER", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Administrator {username!r} exists.")
            return
        password = os.environ.get("SWITCHYARD_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("SWITCHYARD_ADMIN_PASSWORD"):
            self.stdout.write(self.style.SUCCESS(f"Administrator {username!r} created."))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Administrator {username!r} created with password: {password}\n"
                    "  (shown once; set SWITCHYARD_ADMIN_PASSWORD to choose it yourself)"
                )
            )

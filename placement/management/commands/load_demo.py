from django.core.management.base import BaseCommand

from placement.demo import load_demo


class Command(BaseCommand):
    help = "Load the demo topology (patent Example 1 plus secured and public environments). Idempotent."

    def handle(self, *args, **options) -> None:
        counts = load_demo()
        summary = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo topology loaded: {summary}."))

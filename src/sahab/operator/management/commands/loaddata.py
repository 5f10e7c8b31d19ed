"""``loaddata`` is refused: it would write rows around the services, and so around the
ledger. Data enters sahab through its services: ``sahab demo``, the web pages, the API."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Refused on sahab: data enters through the services, which record it in the ledger."

    def add_arguments(self, parser):
        parser.add_argument("args", metavar="fixture", nargs="*")
        parser.add_argument("--database", default="default")

    def handle(self, *fixtures, **options):
        raise CommandError(
            "loaddata would write rows without their ledger entries: load data through "
            "sahab's services instead (sahab demo, the web pages or the API).")

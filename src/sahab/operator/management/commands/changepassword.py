"""``changepassword`` as sahab does it: the new password is checked like any other and
the change is recorded in the ledger (``directory.user.password_reset``) in the same
transaction, with the operator's console as its actor."""

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sahab.directory.events import DirectoryEvent
from sahab.ledger import services as ledger


class Command(BaseCommand):
    help = "Reset a user's password; the reset is recorded in the public ledger."
    requires_migrations_checks = True
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("username", help="the account whose password is reset")
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        User = get_user_model()
        user = User._default_manager.using(options["database"]).filter(
            **{User.USERNAME_FIELD: options["username"]}).first()
        if user is None:
            raise CommandError(f"user '{options['username']}' does not exist")
        for _ in range(3):
            first = getpass.getpass("New password: ")
            if first != getpass.getpass("New password (again): "):
                self.stderr.write("The passwords do not match.")
                continue
            try:
                validate_password(first, user)
            except ValidationError as exc:
                self.stderr.write("\n".join(exc.messages))
                continue
            break
        else:
            raise CommandError("Password unchanged after three attempts.")
        with transaction.atomic(using=options["database"]):
            user.set_password(first)
            user.save(update_fields=["password"])
            ledger.record(
                DirectoryEvent.USER_PASSWORD_RESET,
                f"user:{user.pk}",
                "system",
                {"by": "changepassword"},
            )
        return f"Password changed for user '{user}'; recorded in the ledger."

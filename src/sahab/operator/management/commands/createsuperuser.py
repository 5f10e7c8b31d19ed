"""``createsuperuser`` makes the first platform administrator of an empty installation,
and records it in the ledger (``directory.platform_admin.created``) in the same
transaction. Once a platform administrator exists it is refused: platform
administrators appoint the next ones in the directory, where the change is checked and
recorded like every other."""

from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError
from django.db import transaction

from sahab.directory.events import DirectoryEvent
from sahab.ledger import services as ledger


class _RecordingManager:
    """The user manager, with ``create_superuser`` recorded in the ledger."""

    def __init__(self, manager):
        self._manager = manager

    def db_manager(self, using=None, hints=None):
        return _RecordingManager(self._manager.db_manager(using, hints))

    def create_superuser(self, **fields):
        with transaction.atomic(using=self._manager.db):
            user = self._manager.create_superuser(**fields)
            ledger.record(
                DirectoryEvent.PLATFORM_ADMIN_CREATED,
                f"user:{user.pk}",
                "system",
                {"by": "createsuperuser"},
            )
        return user

    def __getattr__(self, name):
        return getattr(self._manager, name)


class _RecordingModel:
    """The user model as the command sees it: everything as is, but its manager."""

    def __init__(self, model):
        self._model = model
        self._default_manager = _RecordingManager(model._default_manager)

    def __call__(self, *args, **kwargs):
        return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


class Command(createsuperuser.Command):
    help = ("Create the first platform administrator of an empty installation (recorded in "
            "the ledger); later ones are appointed in the directory.")

    def handle(self, *args, **options):
        model = self.UserModel
        if model._default_manager.db_manager(options["database"]).filter(
                is_superuser=True, is_active=True).exists():
            raise CommandError(
                "A platform administrator exists: new ones are appointed by a platform "
                "administrator in the directory, where the change is recorded.")
        self.UserModel = _RecordingModel(model)
        try:
            return super().handle(*args, **options)
        finally:
            self.UserModel = model

"""Housekeeping that every installation needs."""

import datetime as dt

from django.core.management import call_command
from django.utils import timezone
from django_tasks import task


@task()
def housekeeping() -> None:
    """Drop expired sessions, old login attempts and finished task results."""
    from axes.models import AccessAttempt
    from django_tasks_db.models import DBTaskResult

    call_command("clearsessions")
    AccessAttempt.objects.filter(attempt_time__lt=timezone.now() - dt.timedelta(days=30)).delete()
    DBTaskResult.objects.filter(
        finished_at__lt=timezone.now() - dt.timedelta(days=30)).delete()

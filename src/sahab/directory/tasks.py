"""Background work of the directory, run by the worker's scheduler."""

from __future__ import annotations

from django_tasks import task


@task()
def forget_ended_sessions() -> int:
    """Clear expired sessions and the sign-ins that the account page no longer lists."""
    from sahab.directory import sessions

    return sessions.forget_ended_sessions()

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What operators need: process heartbeats, readiness, metrics, request ids in logs."""

    name = "sahab.ops"
    label = "ops"

    def ready(self) -> None:
        import datetime as dt

        from sahab.core import scheduler
        from sahab.ops import heartbeats, logs

        scheduler.register_periodic(heartbeats.beat_worker,
                                    dt.timedelta(seconds=heartbeats.WORKER_BEAT_SECONDS),
                                    inline=True)
        scheduler.register_periodic(heartbeats.recover_jobs_of_dead_workers,
                                    dt.timedelta(seconds=heartbeats.WORKER_BEAT_SECONDS * 2),
                                    inline=True)
        logs.connect_task_signals()

from django.db import models


class PeriodicJob(models.Model):
    """When a recurring background task is next due; one row per task.

    Several workers may run the scheduler: the conditional update in
    ``scheduler.enqueue_due_jobs`` makes exactly one of them enqueue each run, and a run
    still waiting or running holds the next one back.
    """

    name = models.CharField(max_length=200, unique=True)
    interval_seconds = models.PositiveIntegerField()
    next_run_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    # the queue's id of the run last enqueued: no new run while it waits or runs
    last_result_id = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return self.name

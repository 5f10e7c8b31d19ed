from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of one background process (a worker), for readiness checks."""

    name = models.CharField(max_length=200, unique=True)  # "worker host:pid"
    kind = models.CharField(max_length=30, db_index=True)
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at:%H:%M:%S}"

from django.db import DatabaseError, connection, connections
from django.http import JsonResponse

from sahab.core import dbrouting


def healthz(request):
    """Liveness and database check for load balancers.

    With a replica, a server whose primary does not answer still serves public reads:
    it says so ("degraded") with a 200, so that the load balancer keeps it.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        if not dbrouting.replica_configured():
            raise
        connection.close()
        with connections[dbrouting.REPLICA].cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "degraded", "primary": "unavailable", "replica": "ok"})
    return JsonResponse({"status": "ok"})

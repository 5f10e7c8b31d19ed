"""Directory: API token authentication and the public list, against raw queries.

The anchor is the same work done by hand (one indexed SELECT by digest; the ORM query
serialised with json.dumps): the ratio shows what the service and API layers cost.
"""

import hashlib
import json


def main() -> None:
    from bench.common import rate, report, setup_django

    setup_django()
    from django.db import connection
    from django.test import Client

    from sahab.directory import services
    from sahab.directory.demo import load as load_directory
    from sahab.directory.models import Administration

    load_directory({}, {})
    user = Administration.objects.get(code="MF").agents.first().user
    _, token = services.issue_api_token(actor=user, user=user, name="bench")
    digest = hashlib.sha256(token.encode()).hexdigest()

    def raw_lookup():
        with connection.cursor() as cursor:
            cursor.execute("SELECT user_id FROM directory_apitoken WHERE digest = %s", [digest])
            cursor.fetchone()

    report("token authentication", rate(lambda: services.authenticate_token(token), n=2000),
           "auth/s", "raw SELECT", rate(raw_lookup, n=2000))

    client = Client(HTTP_HOST="127.0.0.1")

    def raw_list():
        rows = list(Administration.objects.filter(active=True).values(
            "code", "kind", "name_fr", "name_ar", "name_en", "acronym", "mail_domain")[:50])
        json.dumps(rows)

    report("GET /api/administrations (50 rows)",
           rate(lambda: client.get("/api/administrations?limit=50"), n=300),
           "req/s", "ORM + json.dumps", rate(raw_list, n=300))

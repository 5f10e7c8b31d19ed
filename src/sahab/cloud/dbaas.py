"""Databases as a service on the PostgreSQL cluster named by ``SAHAB_DBAAS_URL``.

Per service instance: a NOLOGIN owner role and a database it owns, closed to PUBLIC,
with the plan's connection limit. Per binding: a LOGIN role that is a member of the
owner role (so it may create and use tables) with its own password. Every function is
idempotent, because the broker's work is retried after crashes.

Names are derived from the OSB ids by hashing, so they are valid identifiers whatever
the platform sends; statements are composed with ``psycopg.sql`` (identifiers and
literals are quoted by the driver, never by string formatting).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.conf import settings
from psycopg import sql


class DbaasUnavailable(Exception):
    """No DBaaS cluster is configured, or it cannot be reached."""


@dataclass(frozen=True)
class Names:
    database: str
    owner: str


def configured() -> bool:
    return bool(settings.DBAAS_URL)


def names_for(instance_id: str) -> Names:
    digest = hashlib.sha256(instance_id.encode()).hexdigest()[:20]
    return Names(database=f"sahab_{digest}", owner=f"sahab_{digest}_owner")


def binding_role_for(instance_id: str, binding_id: str) -> str:
    digest = hashlib.sha256(f"{instance_id}/{binding_id}".encode()).hexdigest()[:20]
    return f"sahab_{digest}_app"


@contextmanager
def _connect(database: str | None = None):
    if not configured():
        raise DbaasUnavailable("SAHAB_DBAAS_URL is not set")
    url = settings.DBAAS_URL
    if database:
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(path="/" + database))
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DbaasUnavailable(str(exc).strip()) from exc
    try:
        yield connection
    finally:
        connection.close()


def reachable() -> bool:
    try:
        with _connect() as connection:
            connection.execute("SELECT 1")
        return True
    except DbaasUnavailable:
        return False


def _exists(connection, catalog: str, name: str) -> bool:
    query = {"role": "SELECT 1 FROM pg_roles WHERE rolname = %s",
             "database": "SELECT 1 FROM pg_database WHERE datname = %s"}[catalog]
    return connection.execute(query, (name,)).fetchone() is not None


def create_database(names: Names, *, connection_limit: int) -> None:
    with _connect() as connection:
        if not _exists(connection, "role", names.owner):
            connection.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(
                sql.Identifier(names.owner)))
        if not _exists(connection, "database", names.database):
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {} CONNECTION LIMIT {}").format(
                sql.Identifier(names.database), sql.Identifier(names.owner),
                sql.Literal(connection_limit)))
        connection.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(names.database)))
        isolate_cluster(connection)


_TENANT_DATABASE = re.compile(r"sahab_[0-9a-f]{20}")


def isolate_cluster(connection) -> list[str]:
    """Close every other database of the cluster to PUBLIC (``postgres``, ``template1``,
    anything an operator made), so that a tenant's login can CONNECT to its own database
    only. Tenant databases are closed when they are made. Returns the databases closed.

    Superusers and the databases' owners keep their access. Where the DBaaS role may not
    change a database (not its owner), PostgreSQL only warns: docs/security.md says how
    to close the cluster once by hand in production.
    """
    closed = []
    rows = connection.execute(
        "SELECT datname FROM pg_database WHERE datallowconn AND (datacl IS NULL OR "
        "EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0))").fetchall()
    for (name,) in rows:
        if _TENANT_DATABASE.fullmatch(name):
            continue
        connection.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC")
                           .format(sql.Identifier(name)))
        closed.append(name)
    return closed


def set_connection_limit(names: Names, limit: int) -> None:
    with _connect() as connection:
        connection.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
            sql.Identifier(names.database), sql.Literal(limit)))


def _terminate(connection, *, database: str | None = None, role: str | None = None) -> None:
    if database:
        connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
    if role:
        connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE usename = %s AND pid <> pg_backend_pid()", (role,))


def drop_database(names: Names, binding_roles: list[str]) -> None:
    with _connect() as connection:
        for role in binding_roles:
            if _exists(connection, "role", role):
                connection.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        _terminate(connection, database=names.database)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(names.database)))
        for role in [*binding_roles, names.owner]:
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def create_login(names: Names, role: str, *, connection_limit: int) -> str:
    """Create (or reset) the binding's login role; returns its new password."""
    password = secrets.token_urlsafe(24)
    with _connect() as connection:
        verb = "ALTER" if _exists(connection, "role", role) else "CREATE"
        connection.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
            sql.Identifier(role), sql.Literal(password), sql.Literal(connection_limit)))
        connection.execute(sql.SQL("GRANT {} TO {}").format(
            sql.Identifier(names.owner), sql.Identifier(role)))
        isolate_cluster(connection)  # databases made since the tenant's own was
    return password


def drop_login(names: Names, role: str) -> None:
    """Remove a binding's role; the tables it created go to the owner role, kept."""
    with _connect() as connection:
        if not _exists(connection, "role", role):
            return
        connection.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        _terminate(connection, role=role)
        database_exists = _exists(connection, "database", names.database)
    if database_exists:
        with _connect(names.database) as connection:
            connection.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                sql.Identifier(role), sql.Identifier(names.owner)))
            connection.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with _connect() as connection:
        connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@dataclass(frozen=True)
class Measure:
    size_bytes: int
    connections: int


def measure(names: Names) -> Measure | None:
    with _connect() as connection:
        row = connection.execute(
            "SELECT pg_database_size(datname), (SELECT count(*) FROM pg_stat_activity a "
            "WHERE a.datname = d.datname) FROM pg_database d WHERE datname = %s",
            (names.database,)).fetchone()
    return Measure(int(row[0]), int(row[1])) if row else None


def database_exists(names: Names) -> bool:
    with _connect() as connection:
        return _exists(connection, "database", names.database)


def role_exists(role: str) -> bool:
    with _connect() as connection:
        return _exists(connection, "role", role)


def server_address() -> tuple[str, int]:
    """Host and port that the bindings' applications connect to."""
    parts = urlsplit(settings.DBAAS_URL)
    host = settings.DBAAS_PUBLIC_HOST or parts.hostname or "127.0.0.1"
    return host, parts.port or 5432

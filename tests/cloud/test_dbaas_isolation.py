"""DBaaS isolation (issue: "Shared database cluster"): a binding's credentials CONNECT to
their own database only — not ``postgres``, ``template1`` or another tenant's."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from sahab.cloud import dbaas as clusters


def login_uri(role: str, password: str, database: str) -> str:
    host, port = clusters.server_address()
    return f"postgresql://{role}:{password}@{host}:{port}/{database}"


@pytest.fixture
def tenants(dbaas):  # the cluster (tests/cloud/conftest.py)
    made = []
    for _ in range(2):
        instance = str(uuid.uuid4())
        names = clusters.names_for(instance)
        role = clusters.binding_role_for(instance, str(uuid.uuid4()))
        clusters.create_database(names, connection_limit=5)
        password = clusters.create_login(names, role, connection_limit=3)
        made.append((names, role, password))
    yield made
    for names, role, _ in made:
        clusters.drop_database(names, [role])



def test_a_binding_connects_to_its_own_database_only(tenants):
    """The finding: binding credentials could CONNECT to postgres, template1 and other
    tenants' databases."""
    (mine, role, password), (theirs, _, _) = tenants
    with psycopg.connect(login_uri(role, password, mine.database), connect_timeout=5) as own:
        own.execute("CREATE TABLE notes (id int)")  # the tenant works in its own database
        assert own.execute("SELECT current_database()").fetchone()[0] == mine.database
    for database in ("postgres", "template1", theirs.database):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(login_uri(role, password, database), connect_timeout=5).close()


def test_a_database_made_later_on_the_cluster_is_closed_too(tenants, dbaas):
    (mine, role, password), _ = tenants
    extra = f"operator_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbaas, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(extra)))
        try:
            clusters.create_login(mine, role, connection_limit=3)  # a new binding
            password = clusters.create_login(mine, role, connection_limit=3)
            with pytest.raises(psycopg.OperationalError, match="permission denied"):
                psycopg.connect(login_uri(role, password, extra), connect_timeout=5).close()
        finally:
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(extra)))

"""Test data made through the services, so tests see what the product would make."""

from __future__ import annotations

import itertools

from sahab.directory import services
from sahab.directory.models import Administration, AdministrationKind, Role
from sahab.directory.selectors import SYSTEM

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def administration(*, code: str | None = None, kind: str = AdministrationKind.MINISTRY,
                   parent: Administration | None = None, mail_domain: str | None = None,
                   **names) -> Administration:
    n = next(_seq)
    code = code or f"ADM{n}"
    return services.create_administration(
        actor=SYSTEM, code=code, kind=kind, parent=parent,
        name_fr=names.get("name_fr", f"Administration {n}"),
        name_ar=names.get("name_ar", f"إدارة {n}"), name_en=names.get("name_en", ""),
        mail_domain=mail_domain)


def agent(*, administration: Administration | None = None, roles=(), username: str | None = None,
          password: str = PASSWORD):
    n = next(_seq)
    administration = administration or globals()["administration"]()
    created, _ = services.create_agent(
        actor=SYSTEM, administration=administration, username=username or f"agent{n}",
        email=f"agent{n}@example.gov.tn", first_name="Agent", last_name=str(n), roles=roles,
        password=password)
    return created


def platform_admin(**kwargs):
    return agent(roles=[Role.PLATFORM_ADMIN], **kwargs)


def company(*, name: str | None = None, matricule: str | None = None,
            username: str | None = None, provider: bool = False):
    n = next(_seq)
    created, member, _ = services.register_company(
        actor=SYSTEM, name=name or f"Company {n}",
        matricule_fiscal=matricule or f"{1000000 + n:07d}A/A/M/000",
        admin_username=username or f"company{n}", admin_email=f"c{n}@example.tn",
        admin_password=PASSWORD, is_cloud_provider=provider)
    return created, member

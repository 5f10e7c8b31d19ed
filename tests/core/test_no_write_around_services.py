"""No write around the services: every admin screen, model form and management command
either only reads, or changes things through the services (checked and recorded in the
ledger), or is refused. The findings replayed: through /admin/, moving an agent to another
administration, deactivating a company, changing a matricule fiscal or a superuser flag
left no ledger entry at all."""

import importlib
import pkgutil

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError

import sahab
from sahab.directory.models import Agent, ApiToken, Company
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry, Witness
from tests import factories

pytestmark = pytest.mark.django_db

# The admins that change something, each through services, each replayed below.
THROUGH_SERVICES = {"directory.Administration", "directory.Agent", "directory.Company",
                    "directory.ApiToken", "ledger.Witness"}


@pytest.fixture
def staff(client):
    """A platform administrator signed in to /admin/."""
    admin_agent = factories.platform_admin()
    client.force_login(admin_agent.user)
    return admin_agent.user


def entries(type_: str) -> list[dict]:
    """The entries of ``type_`` once the worker's sequencer integrated what is pending."""
    import json

    ledger.integrate_pending()
    return [json.loads(bytes(e.body)) for e in Entry.objects.filter(type=type_)]


def test_every_registered_admin_only_reads_or_goes_through_services(rf, staff, client):
    request = rf.get("/admin/")
    request.user = staff
    assert not admin.site.is_registered(User), "the stock user admin is not exposed"
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        writes = [p for p in ("add", "change", "delete")
                  if getattr(model_admin, f"has_{p}_permission")(request)]
        actions = set(model_admin.get_actions(request))
        assert "delete_selected" not in actions, label
        if label in THROUGH_SERVICES:
            assert "delete" not in writes, label
            continue
        assert writes == [] and actions == set(), f"{label} writes around the services"
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/"
        assert client.post(url, {}).status_code == 403, label
    for inline_owner in admin.site._registry.values():
        for inline in inline_owner.get_inline_instances(request):
            assert not (inline.has_add_permission(request, None)
                        or inline.has_change_permission(request)
                        or inline.has_delete_permission(request)), type(inline).__name__


def test_the_stock_user_and_group_screens_are_gone(staff, client):
    superuser_flag = client.post(f"/admin/auth/user/{staff.pk}/change/",
                                 {"is_superuser": "on", "username": staff.username})
    assert superuser_flag.status_code == 404
    assert client.get("/admin/auth/group/").status_code == 404


def test_every_model_form_is_an_admin_form_saved_through_services():
    for info in pkgutil.walk_packages(sahab.__path__, "sahab."):
        if ".migrations" not in info.name and not info.name.endswith(("wsgi", "asgi")):
            importlib.import_module(info.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    mine = {f for f in subclasses(forms.ModelForm) if f.__module__.startswith("sahab.")}
    admin_forms = {type(a).form: a.model._meta.label for a in admin.site._registry.values()}
    for form in mine:
        assert admin_forms.get(form) in THROUGH_SERVICES, \
            f"{form.__module__}.{form.__name__} saves rows outside an admin that uses services"


def test_moving_deactivating_and_regranting_an_agent_in_the_admin_records_each(staff, client):
    agent = factories.agent()
    other = factories.administration()
    url = f"/admin/directory/agent/{agent.pk}/change/"
    form = {"administration": other.pk, "roles": ["procurement_officer"], "active": "",
            "roles-TOTAL_FORMS": "0", "roles-INITIAL_FORMS": "0"}
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    agent = Agent.objects.select_related("user").get(pk=agent.pk)
    assert agent.administration == other and not agent.user.is_active
    assert agent.role_set == {"procurement_officer"}
    subject = f"user:{agent.user_id}"
    assert [e["data"]["administration"] for e in entries("directory.agent.moved")
            if e["subject"] == subject] == [other.code]
    assert [e["actor"] for e in entries("directory.agent.disabled")] == [f"user:{staff.pk}"]
    assert entries("directory.agent.roles_changed")[-1]["data"]["roles"] == \
        ["procurement_officer"]
    size = ledger.tree_size()
    assert client.post(url, form).status_code == 302  # nothing changed: nothing recorded
    assert ledger.tree_size() == size


def test_deactivating_a_company_and_changing_its_matricule_in_the_admin_records_it(
        staff, client):
    company, _ = factories.company()
    url = f"/admin/directory/company/{company.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = {f: getattr(company, f) for f in ("name", "legal_form", "address", "city",
                                             "postal_code", "email", "phone", "website")}
    data |= {"matricule_fiscal": "1234567A/A/M/000", "is_bidder": "on", "active": ""}
    data |= {"members-TOTAL_FORMS": "1", "members-INITIAL_FORMS": "1",
             "members-MIN_NUM_FORMS": "0", "members-MAX_NUM_FORMS": "1000",
             "members-0-id": company.members.get().pk, "members-0-company": company.pk}
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:3000]
    company.refresh_from_db()
    assert not company.active and company.matricule_fiscal == "1234567A/A/M/000"
    recorded = entries("directory.company.updated")[-1]
    assert recorded["subject"] == f"company:{company.pk}" and recorded["actor"] == \
        f"user:{staff.pk}"
    assert recorded["data"]["matricule_fiscal"] == "1234567A/A/M/000"
    assert recorded["data"]["active"] is False


def test_a_bad_matricule_in_the_admin_is_refused_and_nothing_is_recorded(staff, client):
    company, _ = factories.company()
    ledger.integrate_pending()
    size = ledger.tree_size()
    data = {"name": company.name, "matricule_fiscal": "not-a-matricule", "active": "on",
            "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0"}
    response = client.post(f"/admin/directory/company/{company.pk}/change/", data)
    assert response.status_code == 200  # the form again, with its error
    ledger.integrate_pending()  # nothing pending either
    assert ledger.tree_size() == size
    assert Company.objects.get(pk=company.pk).matricule_fiscal == company.matricule_fiscal


def test_renaming_an_administration_in_the_admin_records_it(staff, client):
    unit = factories.administration()
    data = {"parent": "", "name_fr": "Nouveau nom", "name_ar": unit.name_ar, "name_en": "",
            "acronym": "", "mail_domain": "", "active": "on"}
    response = client.post(f"/admin/directory/administration/{unit.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert entries("directory.administration.updated")[-1]["data"]["name_fr"] == "Nouveau nom"


def test_revoking_tokens_in_the_admin_goes_through_the_service(staff, client):
    from sahab.directory import services

    agent = factories.agent()
    token, _ = services.issue_api_token(actor=agent.user, user=agent.user, name="ci")
    response = client.post("/admin/directory/apitoken/", {
        "action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert entries("directory.token.revoked")[-1]["data"]["token"] == token.pk


def test_witnesses_are_registered_and_switched_in_the_admin_with_a_ledger_entry(
        staff, client, sahab_home):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sahab.core import keys
    from sahab.ledger import note

    keys.ensure_ledger_key()
    public = note.Signer("w", Ed25519PrivateKey.generate()).verifier.public_key
    vkey = note.Verifier("witness.inai.example", note.SIG_COSIGNATURE_V1, public).vkey()
    form = {"name": "witness.inai.example", "vkey": vkey, "active": "on"}
    refused = client.post("/admin/ledger/witness/add/",
                          {**form, "url": "http://10.0.0.7/add-checkpoint"})
    assert refused.status_code == 302 and not Witness.objects.exists()
    response = client.post("/admin/ledger/witness/add/",
                           {**form, "url": "https://witness.inai.example/add-checkpoint"})
    assert response.status_code == 302, response.content[:2000]
    witness = Witness.objects.get()
    assert entries("ledger.witness.registered")[0]["actor"] == f"user:{staff.pk}"
    client.post(f"/admin/ledger/witness/{witness.pk}/change/",
                {"url": witness.url, "active": ""})
    assert not Witness.objects.get().active
    assert entries("ledger.witness.changed")[0]["data"] == {"active": False}


def test_an_administration_admin_cannot_reach_the_admin(client):
    agent = factories.agent(roles=["administration_admin"])
    client.force_login(agent.user)
    response = client.post("/admin/ledger/witness/add/", {"name": "x"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Witness.objects.exists()


# --- management commands ------------------------------------------------------------------

# Every command, and why its writes need no entry or how they get one. A new command
# fails this test until someone decides which it is.
COMMANDS = {
    # record their change in the ledger (tested below)
    "createsuperuser": "ledger", "changepassword": "ledger",
    # refused (tested below)
    "loaddata": "refused",
    # empties the database: the signer refuses the emptied log (tested below)
    "flush": "owner",
    # the database owner's or root's console: what the append-only guard, the signer,
    # the witnesses and the auditors are there for
    "shell": "owner", "dbshell": "owner",
    # schema, files or output only; no pillar's rows
    "check": "none", "compilemessages": "none", "createcachetable": "none",
    "diffsettings": "none", "dumpdata": "none", "inspectdb": "none", "makemessages": "none",
    "makemigrations": "none", "migrate": "none", "optimizemigration": "none",
    "sendtestemail": "none", "showmigrations": "none", "sqlflush": "none",
    "sqlmigrate": "none", "sqlsequencereset": "none", "squashmigrations": "none",
    "startapp": "none", "startproject": "none", "test": "none", "testserver": "none",
    "collectstatic": "none", "findstatic": "none", "runserver": "none",
    "export_openapi_schema": "none",  # django-ninja's: prints the API schema
    # sessions, login-throttling counters, task results, content types: no pillar state
    "clearsessions": "none", "remove_stale_contenttypes": "none",
    "prune_db_task_results": "none", "db_worker": "none", "axes_list_attempts": "none",
    "axes_reset": "none", "axes_reset_failure_logs": "none", "axes_reset_ip": "none",
    "axes_reset_ip_username": "none", "axes_reset_logs": "none", "axes_reset_username": "none",
}


def test_every_management_command_is_accounted_for():
    assert set(get_commands()) == set(COMMANDS)


def test_createsuperuser_records_the_first_platform_admin_and_then_is_refused(sahab_home):
    call_command("createsuperuser", interactive=False, username="root1",
                 email="root1@example.gov.tn", verbosity=0)
    user = User.objects.get(username="root1")
    recorded = entries("directory.platform_admin.created")
    assert [e["subject"] for e in recorded] == [f"user:{user.pk}"]
    with pytest.raises(CommandError, match="appointed"):
        call_command("createsuperuser", interactive=False, username="root2",
                     email="root2@example.gov.tn", verbosity=0)
    assert not User.objects.filter(username="root2").exists()
    assert len(entries("directory.platform_admin.created")) == 1


def test_changepassword_records_the_reset(monkeypatch):
    import getpass

    agent = factories.agent()
    typed = iter(["a much longer passphrase 42"] * 2)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    call_command("changepassword", agent.user.username, verbosity=0)
    agent.user.refresh_from_db()
    assert agent.user.check_password("a much longer passphrase 42")
    assert entries("directory.user.password_reset")[0]["subject"] == f"user:{agent.user_id}"


def test_loaddata_is_refused():
    with pytest.raises(CommandError, match="ledger"):
        call_command("loaddata", "anything.json")


@pytest.mark.django_db(transaction=True)
def test_after_a_flush_the_signer_refuses_the_emptied_log(sahab_home):
    from sahab.core import keys
    from sahab.ledger import signing

    keys.ensure_ledger_key()
    ledger._signer.cache_clear()
    factories.administration()
    ledger.integrate_pending()  # the worker's tick: the entry was written pending
    assert ledger.checkpoint_if_grown().size == 1
    call_command("flush", interactive=False, verbosity=0)
    factories.administration()
    factories.administration()
    ledger.integrate_pending()
    assert ledger.checkpoint_if_grown() is None
    assert signing.alarm()["active"] and ledger.latest_checkpoint().size == 1

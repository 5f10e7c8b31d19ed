import datetime as dt

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sahab.directory import selectors, services
from sahab.directory.models import Administration, AdministrationKind, ApiToken, Role
from sahab.directory.selectors import SYSTEM
from tests import factories

pytestmark = pytest.mark.django_db
K = AdministrationKind


@pytest.fixture
def finances():
    mf = factories.administration(code="MF", mail_domain="finances.gov.tn")
    daf = factories.administration(code="MF-DAF", kind=K.DIRECTORATE, parent=mf)
    return mf, daf


@pytest.fixture
def mf_admin(finances):
    return factories.agent(administration=finances[0], roles=[Role.ADMINISTRATION_ADMIN]).user


def test_administration_admin_creates_agents_only_in_their_subtree(finances, mf_admin):
    _, daf = finances
    other = factories.administration(code="MS")
    agent, password = services.create_agent(actor=mf_admin, administration=daf,
                                            username="sonia", email="sonia@finances.gov.tn",
                                            roles=[Role.PROCUREMENT_OFFICER])
    assert agent.administration == daf and password
    assert agent.user.check_password(password)
    with pytest.raises(PermissionDenied):
        services.create_agent(actor=mf_admin, administration=other, username="x",
                              email="x@example.tn")
    assert not get_user_model().objects.filter(username="x").exists()


def test_only_platform_admins_grant_the_platform_admin_role(finances, mf_admin):
    with pytest.raises(PermissionDenied):
        services.create_agent(actor=mf_admin, administration=finances[1], username="evil",
                              email="evil@example.tn", roles=[Role.PLATFORM_ADMIN])
    agent = factories.agent(administration=finances[1])
    with pytest.raises(PermissionDenied):
        services.set_agent_roles(actor=mf_admin, agent=agent, roles=[Role.PLATFORM_ADMIN])
    assert agent.role_set == set()


def test_platform_admin_role_gives_access_to_the_admin_screens():
    agent = factories.agent(roles=[Role.PLATFORM_ADMIN])
    assert agent.user.is_staff and agent.user.is_superuser
    services.set_agent_roles(actor=SYSTEM, agent=agent, roles=[Role.AUDITOR])
    agent.user.refresh_from_db()
    assert not agent.user.is_staff and not agent.user.is_superuser


def test_unknown_role_is_refused():
    agent = factories.agent()
    with pytest.raises(InvalidInput):
        services.set_agent_roles(actor=SYSTEM, agent=agent, roles=["dictator"])


def test_administration_admin_cannot_create_top_level_bodies(mf_admin):
    with pytest.raises(PermissionDenied):
        services.create_administration(actor=mf_admin, code="NEW", kind=K.MINISTRY,
                                       name_fr="Nouveau", name_ar="جديد")
    assert not Administration.objects.filter(code="NEW").exists()


def test_kind_must_fit_the_parent(finances):
    with pytest.raises(InvalidInput):
        services.create_administration(actor=SYSTEM, code="COM-X", kind=K.MUNICIPALITY,
                                       parent=finances[0], name_fr="x", name_ar="س")
    with pytest.raises(InvalidInput):
        services.create_administration(actor=SYSTEM, code="DIR-X", kind=K.DIRECTORATE,
                                       name_fr="x", name_ar="س")


def test_bad_codes_and_domains_are_refused_with_field_errors():
    with pytest.raises(InvalidInput) as info:
        services.create_administration(actor=SYSTEM, code="1bad code", kind=K.MINISTRY,
                                       name_fr="x", name_ar="س", mail_domain="not a domain")
    assert {"code", "mail_domain"} <= set(info.value.field_errors)


def test_duplicate_code_or_domain_is_a_conflict(finances):
    with pytest.raises((Conflict, InvalidInput)):
        services.create_administration(actor=SYSTEM, code="MF", kind=K.MINISTRY,
                                       name_fr="x", name_ar="س")
    with pytest.raises((Conflict, InvalidInput)):
        services.create_administration(actor=SYSTEM, code="MF2", kind=K.MINISTRY,
                                       name_fr="x", name_ar="س", mail_domain="finances.gov.tn")


def test_moving_an_administration_moves_its_subtree(finances):
    mf, daf = finances
    unit = factories.administration(code="MF-DAF-U1", kind=K.UNIT, parent=daf)
    ms = factories.administration(code="MS")
    services.update_administration(actor=SYSTEM, administration=daf, parent=ms)
    unit.refresh_from_db()
    assert unit.path == "/MS/MF-DAF/MF-DAF-U1/"
    assert unit.is_within(ms) and not unit.is_within(mf)


def test_an_administration_cannot_move_under_itself(finances):
    mf, daf = finances
    with pytest.raises(InvalidInput):
        services.update_administration(actor=SYSTEM, administration=mf, parent=daf)


def test_administration_admin_cannot_move_or_disable_their_own_root(finances, mf_admin):
    mf, _ = finances
    with pytest.raises(PermissionDenied):
        services.update_administration(actor=mf_admin, administration=mf, active=False)
    with pytest.raises(PermissionDenied):
        services.update_administration(actor=mf_admin, administration=mf, parent=None)


def test_disabling_an_agent_revokes_their_tokens():
    agent = factories.agent()
    _, token = services.issue_api_token(actor=agent.user, user=agent.user, name="ci")
    assert services.authenticate_token(token) == agent.user
    services.set_agent_active(actor=SYSTEM, agent=agent, active=False)
    assert services.authenticate_token(token) is None
    assert ApiToken.objects.get(user=agent.user).revoked_at is not None


def test_tokens_are_stored_as_digests_and_can_be_revoked_by_their_owner_only():
    a, b = factories.agent(), factories.agent()
    record, token = services.issue_api_token(actor=a.user, user=a.user, name="deploy")
    assert token not in record.digest and record.prefix == token[:12]
    with pytest.raises(NotFound):
        services.revoke_api_token(actor=b.user, token_id=record.pk)
    with pytest.raises(PermissionDenied):
        services.issue_api_token(actor=b.user, user=a.user, name="steal")
    services.revoke_api_token(actor=a.user, token_id=record.pk)
    assert services.authenticate_token(token) is None


def test_expired_tokens_do_not_authenticate():
    agent = factories.agent()
    record, token = services.issue_api_token(
        actor=agent.user, user=agent.user, name="short",
        expires_at=timezone.now() + dt.timedelta(hours=1))
    ApiToken.objects.filter(pk=record.pk).update(expires_at=timezone.now() - dt.timedelta(1))
    assert services.authenticate_token(token) is None
    with pytest.raises(InvalidInput):
        services.issue_api_token(actor=agent.user, user=agent.user, name="past",
                                 expires_at=timezone.now() - dt.timedelta(days=1))


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize("holder", ["agent", "company", "neither"])
def test_a_token_is_read_with_its_holder_as_the_orm_reads_it(holder, django_assert_num_queries):
    """The token's one prebuilt query gives the same rows, with the same Python types on
    both databases, as the ORM's select_related; asking for the holder costs no query."""
    user = {"agent": lambda: factories.agent().user,
            "company": lambda: factories.company()[1].user,
            "neither": lambda: get_user_model().objects.create_user("plain")}[holder]()
    record, _token = services.issue_api_token(actor=SYSTEM, user=user, name="api",
                                              expires_at=timezone.now() + dt.timedelta(days=1))
    ApiToken.objects.filter(pk=record.pk).update(last_used_at=timezone.now())
    expected = ApiToken.objects.select_related(
        "user__agent__administration", "user__company_member__company").get(pk=record.pk)
    with django_assert_num_queries(1):
        found = selectors.token_with_holder(record.digest)
        assert _fields(found) == _fields(expected)
        assert _fields(found.user) == _fields(expected.user)
        assert isinstance(found.expires_at, dt.datetime) and found.expires_at.tzinfo
        assert selectors.company_of(found.user) == selectors.company_of(expected.user)
        agent = selectors.agent_of(found.user)
        assert (agent is None) == (holder != "agent")
        if agent is not None:
            assert _fields(agent) == _fields(expected.user.agent)
            assert _fields(agent.administration) == _fields(expected.user.agent.administration)
            assert agent.user is found.user
        company = selectors.company_of(found.user)
        if holder == "company":
            assert _fields(company) == _fields(expected.user.company_member.company)
        else:
            assert company is None
    assert selectors.token_with_holder("0" * 64) is None


@pytest.mark.parametrize("garbage", ["", "sahab_", "Bearer x", "sahab_" + "x" * 300, "🙂"])
def test_garbage_tokens_do_not_authenticate(garbage):
    assert services.authenticate_token(garbage) is None


def test_totp_codes_work_once_and_wrong_codes_fail():
    agent = factories.agent()
    secret = services.new_totp_secret()
    with pytest.raises(InvalidInput):
        services.enable_totp(agent=agent, secret=secret, code="000000")
    totp = pyotp.TOTP(secret)
    services.enable_totp(agent=agent, secret=secret, code=totp.now())
    agent.refresh_from_db()
    assert agent.totp_enabled
    # the code used to enable it cannot be replayed to sign in
    assert not services.verify_totp(agent=agent, code=totp.now())
    next_code = totp.at(timezone.now() + dt.timedelta(seconds=30))
    assert services.verify_totp(agent=agent, code=next_code)
    assert not services.verify_totp(agent=agent, code=next_code)
    assert not services.verify_totp(agent=agent, code="12ab56")


def test_company_registration_normalises_and_protects_the_tax_identifier():
    company, member = factories.company(matricule="1402317kamm000".upper().replace("KAMM", "KAM"))
    assert company.matricule_fiscal == "1402317K/A/M/000"
    assert member.is_company_admin
    with pytest.raises((Conflict, InvalidInput)):
        factories.company(matricule="1402317K/A/M/000")
    with pytest.raises(InvalidInput) as info:
        factories.company(matricule="12/34")
    assert "matricule_fiscal" in info.value.field_errors


def test_company_admin_adds_users_to_their_company_only():
    c1, m1 = factories.company()
    c2, _ = factories.company()
    member, password = services.add_company_user(actor=m1.user, company=c1, username="bob",
                                                 email="bob@example.tn")
    assert member.company == c1 and password
    with pytest.raises(PermissionDenied):
        services.add_company_user(actor=m1.user, company=c2, username="eve",
                                  email="eve@example.tn")
    with pytest.raises(PermissionDenied):
        services.add_company_user(actor=member.user, company=c1, username="eve",
                                  email="eve@example.tn")


def test_weak_passwords_are_refused():
    with pytest.raises(InvalidInput) as info:
        factories.agent(password="123")
    assert "password" in info.value.field_errors


def test_companies_cannot_read_the_address_book():
    factories.agent()
    _, member = factories.company()
    assert selectors.agents_visible_to(member.user).count() == 0


def test_passwords_are_hashed_with_argon2():
    from sahab import settings as product_settings

    assert product_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")

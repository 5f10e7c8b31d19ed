"""The cloud's refusals: providers, labels, brokers, budgets, orders, instances, usage."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class CloudError(ErrorCode):
    """The government cloud: providers and their labels, service brokers and catalogues,
    budgets, orders and their approval, instances, credentials and metered usage."""

    NO_ORDER = _("No order %(number)s that you may see.")
    ORDER_WITHOUT_INSTANCE = _("The order has no instance yet.")
    NO_SUCH_CREDENTIALS = _("No such credentials.")
    DATE_OPTION_INVALID = _("--%(option)s must be a date like 2026-01-31.")
    NO_SUCH_INSTANCE = _("No such instance.")
    USAGE_FROM_PROVIDER_ONLY = _("Only the instance's provider reports its usage.")
    PERIOD_NOT_AN_HOUR = _(
        "period_start must be the start of an hour in UTC, with its time zone.")
    INSTANCE_ABSENT_THAT_HOUR = _("The instance did not exist during that hour.")
    USAGE_NOT_WHOLE_NUMBER = _("%(what)s must be a whole number, 0 or more.")
    HOUR_ALREADY_REPORTED = _("This hour was already reported with other figures.")
    HOUR_NOT_OVER = _("This hour is not over yet: report it once it has ended.")
    COMPANY_MEMBERS_ONLY = _("Only a member of a registered company may do this.")
    PROVIDER_NOT_APPLIED = _("The company has not applied as a cloud provider.")
    PROVIDER_REVIEW_FORBIDDEN = _("Only a platform administrator reviews cloud providers.")
    APPLY_COMPANY_MEMBERS_ONLY = _("Only a member of a registered company may apply.")
    PROVIDER_ALREADY_APPLIED = _("The company has already applied.")
    UNKNOWN_LABEL = _("Unknown label %(label)s.")
    ATTESTATION_DATES_INVALID = _("The attestation must expire after it starts.")
    ATTESTATION_NOT_PENDING = _("Only a pending attestation is reviewed.")
    ATTESTATION_EXPIRED = _("The attestation has already expired.")
    ATTESTATION_NOT_ACCEPTED = _("Only an accepted attestation is revoked.")
    PROVIDER_WITHOUT_LABEL = _(
        "Qualify a provider once it holds an accepted N-cloud or G-cloud label.")
    BROKER_URL_HAS_QUERY = _("The broker URL has no query.")
    BROKER_BEFORE_QUALIFICATION = _(
        "Only a qualified provider registers a service broker: the platform calls no broker "
        "before the provider is qualified.")
    CATALOGUE_WITHOUT_SERVICES = _("The catalogue has no services list.")
    CATALOGUE_SERVICE_INCOMPLETE = _("Each service needs an id, a name and at least one plan.")
    CATALOGUE_PLAN_INCOMPLETE = _("Each plan needs an id and a name.")
    CATALOGUE_FIELD_WRONG_TYPE = _(
        "The catalogue's %(field)s of %(item)s is not of the type the service broker API "
        "sets.")
    CATALOGUE_NOT_STORED = _("The catalogue could not be stored (%(error)s); nothing changed.")
    BUDGET_FORBIDDEN = _(
        "Only finance agents or administrators of %(administration)s set its cloud budget.")
    BUDGET_YEAR_OUT_OF_RANGE = _("The year must be between 2000 and 2100.")
    BUDGET_THRESHOLDS_INVALID = _("Thresholds are whole percentages between 1 and 200.")
    ROLE_REQUIRED = _("Only a %(role)s agent of %(administration)s may do this.")
    ROLE_REQUIRED_IN_MINISTRY = _(
        "Only a %(role)s agent of the ministry of %(administration)s may do this.")
    PARAMETERS_NOT_OBJECT = _("The parameters must be a JSON object.")
    PARAMETERS_INVALID = _("Invalid parameters: %(error)s")
    PARAMETER_SCHEMA_INVALID = _("The plan's parameter schema is invalid; ask the provider.")
    NO_BUDGET = _(
        "%(administration)s has no cloud budget for %(year)s; ask its finance service to set "
        "one.")
    BUDGET_EXCEEDED = _(
        "The budget for %(year)s is %(amount)s TND; %(committed)s is spent or committed, and "
        "this order needs %(needed)s more until the end of the year.")
    ORDER_AGENTS_ONLY = _("Only an agent of an administration orders cloud services.")
    ORDER_SELF_APPROVAL = _("The agent who placed an order does not approve it.")
    ORDER_DECISION_FORBIDDEN = _("You may not decide this order.")
    ORDER_ALREADY_DECIDED = _("The order has already been decided.")
    PROVIDER_NOT_QUALIFIED = _("%(provider)s is not a qualified cloud provider.")
    PROVIDER_WITHOUT_G_CLOUD = _(
        "%(provider)s holds no valid ANCS G-cloud label: new orders are suspended.")
    PLAN_WITHDRAWN = _("The provider's catalogue no longer lists this plan.")
    PLAN_MARKED_UNAVAILABLE = _("The plan is unavailable: the broker marks it unavailable")
    PLAN_UNAVAILABLE = _("The plan is unavailable: %(reason)s")
    PLAN_WITHOUT_PRICE = _("No framework-agreement contract prices this plan.")
    CREDENTIALS_NEED_ACTIVE_INSTANCE = _("Credentials are made for an active instance.")
    PLAN_WITHOUT_CREDENTIALS = _("This plan gives no credentials.")
    CREDENTIALS_OF_ANOTHER_AGENT = _("Only the agent who asked for these credentials sees them.")
    CREDENTIALS_NOT_READY = _("The credentials are not ready.")
    CREDENTIALS_ALREADY_SHOWN = _(
        "The credentials were already shown; make new ones if they were lost.")
    CREDENTIALS_NOT_REVOCABLE = _("Only ready credentials are revoked.")
    PLAN_CHANGE_NEEDS_ACTIVE = _("The plan of an active instance is changed.")
    PLAN_CHANGE_SAME_OR_OTHER_SERVICE = _("Choose another plan of the same service.")
    PLAN_NOT_UPDATEABLE = _("The provider does not allow changing this plan.")
    PLAN_CHANGE_NEEDS_APPROVAL = _(
        "This plan costs %(monthly)s TND a month, above the %(threshold)s TND that needs the "
        "finance service's approval: order it as a new instance.")
    DELETE_NEEDS_ACTIVE = _("Only an active instance is deleted.")
    RETRY_NEEDS_FAILED = _("Only a failed instance is retried.")
    CATALOGUE_UNREADABLE = _(
        "The broker is registered but its catalogue could not be read: %(error)s")

from django.apps import AppConfig


class OperatorConfig(AppConfig):
    """Django's operator commands that would write around the services, made to go
    through them (or refused). Listed first in INSTALLED_APPS so that its commands
    replace those of ``django.contrib.auth`` and ``django.core``."""

    name = "sahab.operator"
    label = "operator"
    verbose_name = "Operator commands"

"""What the directory tells people about their own account: every change of a factor
that signs them in (ASVS 2.5.5), so that a change they did not make is noticed at once.
Sent through sahab's own mail, once the change is committed; nobody can turn these off."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sahab.mail import notices

CHANGES = {
    "password_changed": gettext_lazy("Your password was changed"),
    "password_reset": gettext_lazy("Your password was reset with a link sent by mail"),
    "second_factor_on": gettext_lazy("Two-factor sign-in was turned on"),
    "second_factor_off": gettext_lazy("Two-factor sign-in was turned off"),
    "sessions_ended": gettext_lazy("Sessions of your account were ended"),
    "mailbox_password_set": gettext_lazy(
        "The password of your mailbox was set by someone else"),
}


@notices.in_platform_language
def sign_in_changed(user, change: str) -> None:
    """Tell ``user`` that ``change`` (a key of ``CHANGES``) was made to their account."""
    account = settings.PUBLIC_URL.rstrip("/") + reverse("directory:home")
    what = str(CHANGES[change])
    notices.tell([user], _("sahab: %(change)s") % {"change": what},
                 _("%(change)s on your sahab account (%(username)s).\n\nIf you did not do "
                   "this, change your password at once and tell your administrator:\n\n"
                   "%(link)s") % {"change": what, "username": user.username,
                                  "link": account},
                 kind=None)

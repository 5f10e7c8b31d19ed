"""Messages the platform itself sends (password resets, alerts) through sahab's own mail:
delivered to a hosted mailbox at once, or queued for the smart host, DKIM-signed."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage


def send(*, sender: str, to: str, subject: str, body: str,
         headers: dict[str, str] | None = None, helo: str = "sahab") -> None:
    """Send one automatic message; raises ``delivery.Refused`` or ``OSError`` when it
    could not be taken (the caller decides what the person is told)."""
    from sahab.mail import delivery, webmail

    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    # long lines are never folded into encoded words: links stay whole
    data = message.as_bytes(policy=email.policy.SMTP.clone(max_line_length=998))
    delivery.accept(delivery.Submission(mail_from=sender, recipients=[to], data=data,
                                        helo=helo, protocol="LOCAL"),
                    webmail.current_routing(), sign=True)

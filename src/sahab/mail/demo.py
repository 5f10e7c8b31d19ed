"""Demo data of the mail pillar: a domain (with DKIM keys) for every administration that
has one, a mailbox and a mail-client password for every demo agent, a registry office
(bureau d'ordre) per ministry run by its administrator, a distribution list, a few
messages, and registered letters — delivered, opened, and one still awaiting opening."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

from django.conf import settings

from sahab.directory.models import Administration, Agent
from sahab.directory.selectors import SYSTEM
from sahab.mail import delivery, letters, services, webmail
from sahab.mail.models import Alias, Letter, Mailbox

# (username of the registry's clerk, administration code)
REGISTRY_CLERKS = [("admin.finances", "MF"), ("admin.sante", "MS")]
# (sender, recipient, subject, body)
MESSAGES = [
    ("it.finances", "it.sante", "Migration de la messagerie",
     "Bonjour Rim,\n\nLa bascule des boîtes du ministère est prévue lundi. Peux-tu "
     "confirmer les créneaux de votre côté ?\n\nWalid"),
    ("achats.sante", "achats.finances", "Accord-cadre cloud : bons de commande",
     "Bonjour Sonia,\n\nNous préparons nos premiers bons de commande sur l'accord-cadre. "
     "Avez-vous un modèle de note de besoin ?\n\nHichem"),
    ("auditeur.cdc", "finance.finances", "Contrôle de l'exécution budgétaire",
     "Madame,\n\nDans le cadre du contrôle annuel, merci de nous transmettre l'état "
     "d'exécution des crédits informatiques.\n\nFatma Ayari"),
]
# (sender, receiving administration, reference, classification, subject, opened?)
LETTERS = [
    ("achats.finances", "MS", "MF/DAF/2026/0412", "procurement",
     "Accord-cadre de services cloud : désignation des correspondants", True),
    ("it.sante", "MF", "MS/DSI/2026/0077", "it",
     "Raccordement du dossier patient à l'intranet de l'État", True),
    ("achats.finances", "MI", "MF/DAF/2026/0415", "budget",
     "Arbitrages budgétaires 2027 : crédits informatiques", False),
]


def load(previous: dict, data: dict) -> None:
    letters.ensure_receipts_key()
    for administration in Administration.objects.exclude(mail_domain=None).exclude(
            mail_domain=""):
        services.ensure_domain(actor=SYSTEM, administration=administration,
                               name=administration.mail_domain)
    known = {u["username"] for u in data.get("users", []) if u.get("kind") == "agent"}
    agents = {a.user.username: a for a in Agent.objects.filter(user__username__in=known)
              .select_related("user", "administration")}
    data["mailboxes"] = _mailboxes(previous, agents)
    _registries(agents)
    _lists(agents)
    _messages(agents)
    _letters(agents)
    data["urls"] |= {"smtp": f"127.0.0.1:{settings.SMTP_PORT}",
                     "submission": f"127.0.0.1:{settings.SUBMISSION_PORT}",
                     "imap": f"127.0.0.1:{settings.IMAP_PORT}",
                     "webmail": settings.PUBLIC_URL.rstrip("/") + "/mail/"}
    data["mail"] = {"receipts_key": letters.verifier_key(),
                    "letters": Letter.objects.count()}


def _mailboxes(previous: dict, agents: dict[str, Agent]) -> list[dict]:
    kept = {m["address"]: m["password"] for m in previous.get("mailboxes", [])}
    boxes = []
    for username, agent in agents.items():
        mailbox = services.provision_agent_mailbox(agent)
        if mailbox is None:
            continue
        password = kept.get(mailbox.address)
        if password is None or not services.check_password(mailbox, password):
            password = services.set_password(actor=SYSTEM, mailbox=mailbox)
        boxes.append({"address": mailbox.address, "password": password,
                      "username": username})
    return boxes


def _registries(agents: dict[str, Agent]) -> None:
    """A registry office mailbox for every ministry-level domain."""
    for administration in Administration.objects.exclude(mail_domain=None).exclude(
            mail_domain=""):
        address = f"{services.REGISTRY_LOCAL_PART}@{administration.mail_domain}"
        if not Mailbox.objects.filter(address=address).exists():
            services.create_shared_mailbox(
                actor=SYSTEM, administration=administration,
                local_part=services.REGISTRY_LOCAL_PART,
                display_name=f"Bureau d'ordre central — {administration.name_fr}"[:200],
                registry=True)
    for username, code in REGISTRY_CLERKS:
        agent = agents.get(username)
        registry = Mailbox.objects.filter(kind=Mailbox.Kind.REGISTRY,
                                          domain__administration__code=code).first()
        if agent is not None and registry is not None:
            services.delegate(actor=SYSTEM, mailbox=registry, agent=agent, can_send=True)


def _lists(agents: dict[str, Agent]) -> None:
    members = [a.mailbox for name, a in agents.items()
               if name.endswith(".finances") and hasattr(a, "mailbox")]
    finances = Administration.objects.filter(code="MF").first()
    if finances is None or not members or Alias.objects.filter(
            address=f"tous@{finances.mail_domain}").exists():
        return
    services.create_alias(actor=SYSTEM, administration=finances, local_part="tous",
                          members=members, is_list=True,
                          description="Tous les agents du ministère (démo)")


def _messages(agents: dict[str, Agent]) -> None:
    """Mail between agents, sent as the webmail does; fixed ids keep a rerun idempotent."""
    table = webmail.current_routing()
    for n, (sender, recipient, subject, body) in enumerate(MESSAGES, start=1):
        if sender not in agents or recipient not in agents:
            continue
        source, target = agents[sender].mailbox, agents[recipient].mailbox
        message = EmailMessage()
        message["From"] = email.utils.formataddr((source.display_name, source.address))
        message["To"] = email.utils.formataddr((target.display_name, target.address))
        message["Subject"] = subject
        message["Date"] = f"Mon, 23 Nov 2026 09:0{n}:00 +0100"
        message["Message-ID"] = f"<demo-{n}@{source.domain.name}>"
        message.set_content(body)
        delivery.accept(delivery.Submission(
            mail_from=source.address, recipients=[target.address],
            data=message.as_bytes(policy=message.policy.clone(linesep="\r\n")),
            auth_user=source.address, helo="demo", protocol="HTTP"), table, sign=True)


def _letters(agents: dict[str, Agent]) -> None:
    for sender, to, reference, classification, subject, opened in LETTERS:
        agent = agents.get(sender)
        if agent is None or not hasattr(agent, "mailbox"):
            continue
        if Letter.objects.filter(sender=agent.mailbox, reference=reference).exists():
            continue
        administration = Administration.objects.get(code=to)
        letter = letters.send_letter(
            actor=agent.user, sender=agent.mailbox, to=administration, reference=reference,
            classification=classification, subject=subject,
            body="Monsieur le Ministre,\n\nJ'ai l'honneur de vous faire parvenir le présent "
                 "courrier …\n\nVeuillez agréer l'expression de ma haute considération.",
            attachments=[("courrier.txt", "text/plain", f"{reference}\n{subject}\n".encode())])
        clerk = _clerk_of(letter.recipient)
        if opened and letter.state == Letter.State.DELIVERED and clerk is not None:
            letters.record_opening(letter, clerk.user, stored_key=letter.delivered_file)


def _clerk_of(registry: Mailbox) -> Agent | None:
    """The agent the registry was delegated to, who opens its letters in the demo."""
    delegation = registry.delegations.select_related("agent__user").first()
    return delegation.agent if delegation is not None else None

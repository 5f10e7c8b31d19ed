"""Webmail, registered letters, the address book, mail administration and the public
pieces (receipt key and check, mail client autoconfiguration)."""

from __future__ import annotations

import hmac
import json
import math

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sahab.core.downloads import attach
from sahab.core.errors import DomainError
from sahab.core.formfields import MultipleFileField
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Agent
from sahab.mail import letters, maildir, selectors, services, webmail
from sahab.mail.errors import MailError
from sahab.mail.models import (
    Classification,
    Mailbox,
    MailDomain,
    NoticeKind,
)
from sahab.mail.receipts import verify_receipt

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _agent(request) -> Agent:
    agent = directory.agent_of(request.user)
    if agent is None:
        raise Http404
    return agent


def _mailbox(request, pk: int, *, send: bool = False) -> Mailbox:
    mailbox = get_object_or_404(Mailbox.objects.select_related("domain"), pk=pk)
    if not services.can_use_mailbox(request.user, mailbox, send=send):
        raise Http404
    return mailbox


def _nav(request, mailbox: Mailbox | None = None, folder: str = "") -> dict:
    """What the webmail's side navigation shows."""
    return {"mailbox": mailbox, "folder": folder, "folder_label": webmail.folder_label(folder),
            "folders": webmail.folder_tree(maildir.folders(mailbox.maildir)) if mailbox else [],
            "mailboxes": selectors.mailboxes_of(request.user),
            "can_admin_mail": selectors.managed_domains(request.user).exists()}


def _folder(name: str) -> str:
    if not maildir.valid_folder(name):
        raise Http404
    return name


# --- webmail ---------------------------------------------------------------------------------

@login_required
def inbox(request):
    """The agent's own mailbox (or the first one delegated)."""
    _agent(request)
    boxes = selectors.mailboxes_of(request.user)
    if not boxes:
        return render(request, "mail/no_mailbox.html", status=200)
    return redirect("mail:folder", pk=boxes[0].pk, folder="INBOX")


@login_required
def folder(request, pk: int, folder: str):
    mailbox = _mailbox(request, pk)
    _folder(folder)
    stored = maildir.messages(mailbox.maildir, folder)
    query = request.GET.get("q", "").strip()[:200]
    if query:
        stored = webmail.search(stored, query)
    pages = max(1, math.ceil(len(stored) / webmail.PAGE_SIZE))
    try:
        page = min(max(1, int(request.GET.get("page", "1"))), pages)
    except ValueError:
        page = 1
    shown = stored[(page - 1) * webmail.PAGE_SIZE:page * webmail.PAGE_SIZE]
    table = webmail.current_routing()  # once for the page, not once a message
    return render(request, "mail/folder.html", {
        **_nav(request, mailbox, folder),
        "rows": [webmail.summary(m, table) for m in shown], "query": query, "page": page,
        "pages": pages, "total": len(stored)})


def _stored(mailbox: Mailbox, folder: str, key: str) -> maildir.StoredMessage:
    _folder(folder)
    stored = maildir.find(mailbox.maildir, folder, key)
    if stored is None:
        raise Http404
    return stored


@login_required
def message(request, pk: int, folder: str, key: str):
    mailbox = _mailbox(request, pk)
    stored = _stored(mailbox, folder, key)
    stored = maildir.set_flag(stored, "S")
    raw = stored.path.read_bytes()
    reading = webmail.read(raw)
    reading.outside = webmail.from_outside(raw)
    # a letter is the very file the platform delivered, whatever the message's headers say
    letter = letters.letter_in(mailbox, stored.key) if folder == "INBOX" else None
    if letter is not None:
        letters.record_opening(letter, request.user, stored_key=stored.key)
    return render(request, "mail/message.html", {
        **_nav(request, mailbox, folder), "key": stored.key, "m": reading, "letter": letter,
        "date": webmail.parse_date(reading.date)})


@login_required
def part(request, pk: int, folder: str, key: str, index: int):
    mailbox = _mailbox(request, pk)
    stored = _stored(mailbox, folder, key)
    try:
        filename, _type, content = webmail.attachment(stored.path.read_bytes(), index)
    except KeyError:
        raise Http404 from None
    response = HttpResponse(content, content_type="application/octet-stream")
    # always a download: a browser never renders mail content as a page of this site
    safe = "".join(c for c in filename if c.isalnum() or c in "._- ")[:100] or "attachment"
    attach(response, safe)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def delete(request, pk: int, folder: str, key: str):
    mailbox = _mailbox(request, pk)
    stored = _stored(mailbox, folder, key)
    if folder == maildir.TRASH:
        stored.path.unlink(missing_ok=True)
    else:
        maildir.move(stored, mailbox.maildir, maildir.TRASH, maildir.mail_owner())
    messages.success(request, _("The message was moved to the bin.")
                     if folder != maildir.TRASH else _("The message was deleted."))
    return redirect("mail:folder", pk=mailbox.pk, folder=folder)


class ComposeForm(forms.Form):
    to = forms.CharField(label=gettext_lazy("To"), max_length=2000)
    cc = forms.CharField(label=gettext_lazy("Cc"), max_length=2000, required=False)
    bcc = forms.CharField(label=gettext_lazy("Bcc"), max_length=2000, required=False,
                          help_text=gettext_lazy("Blind copies: the other recipients do not "
                                                 "see these addresses."))
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=900, required=False,
                              strip=False)
    body = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(
        attrs={"rows": 14}), required=False, max_length=2_000_000)
    attachments = MultipleFileField(label=gettext_lazy("Attachments"), required=False)
    in_reply_to = forms.CharField(widget=forms.HiddenInput, required=False, max_length=900)
    references = forms.CharField(widget=forms.HiddenInput, required=False, max_length=4000)
    # folder/key of a forwarded message, whose attachments go along
    forward = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)


def _uploads(files) -> list[tuple[str, str, bytes]]:
    total = sum(f.size for f in files)
    if total > MAX_UPLOAD_BYTES:
        raise DomainError(MailError.ATTACHMENTS_TOO_LARGE, mb=MAX_UPLOAD_BYTES // 1024 // 1024)
    return [(f.name, f.content_type or "application/octet-stream", f.read()) for f in files]


def _prefill(mailbox: Mailbox, request) -> tuple[dict, list[tuple[str, str, bytes]]]:
    """Fields of a reply (?reply=folder/key, ?all=1) or a forward (?forward=folder/key)."""
    source = request.GET.get("reply") or request.GET.get("forward")
    if not source or "/" not in source:
        return {"to": request.GET.get("to", "")}, []
    folder_name, key = source.rsplit("/", 1)
    stored = _stored(mailbox, folder_name, key)
    raw = stored.path.read_bytes()
    reading = webmail.read(raw)
    quoted = "\n".join("> " + line for line in reading.text.splitlines())
    if request.GET.get("reply"):
        to = reading.sender
        if request.GET.get("all"):
            others = [a for a in (reading.to, reading.cc) if a]
            to = ", ".join([to, *others])
        subject = reading.subject if reading.subject.lower().startswith("re:") \
            else f"Re: {reading.subject}"
        return {"to": to, "subject": subject,
                "body": f"\n\n{reading.sender} — {reading.date}:\n{quoted}",
                "in_reply_to": reading.message_id}, []
    subject = reading.subject if reading.subject.lower().startswith("fwd:") \
        else f"Fwd: {reading.subject}"
    body = (f"\n\n---------- {_('Forwarded message')} ----------\n{_('From')}: "
            f"{reading.sender}\n{_('Date')}: {reading.date}\n{_('Subject')}: "
            f"{reading.subject}\n{_('To')}: {reading.to}\n\n{reading.text}")
    carried = [webmail.attachment(raw, a.index) for a in reading.attachments]
    return {"subject": subject, "body": body}, carried


@login_required
def compose(request, pk: int):
    mailbox = _mailbox(request, pk, send=True)
    initial, carried = _prefill(mailbox, request)
    initial["forward"] = request.GET.get("forward", "")[:500]
    form = ComposeForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            carried = []
            forward = data["forward"]
            if forward and "/" in forward:
                folder_name, key = forward.rsplit("/", 1)
                raw = _stored(mailbox, folder_name, key).path.read_bytes()
                carried = [webmail.attachment(raw, a.index)
                           for a in webmail.read(raw).attachments]
            message, recipients = webmail.compose(
                mailbox=mailbox, to=data["to"], cc=data["cc"], bcc=data["bcc"],
                subject=data["subject"],
                body=data["body"], attachments=carried + _uploads(data["attachments"]),
                in_reply_to=data["in_reply_to"], references=data["references"])
            accepted = webmail.send(actor=request.user, mailbox=mailbox, message=message,
                                    recipients=recipients)
        except DomainError as exc:
            for name, errors in getattr(exc, "field_errors", {}).items():
                if name in form.fields:
                    for error in errors:
                        form.add_error(name, error)
            form.add_error(None, exc.detail)
        else:
            note = _("Message sent.")
            if accepted.queued:
                note += " " + _("Mail for other domains waits in the outbound queue.")
            messages.success(request, note)
            return redirect("mail:folder", pk=mailbox.pk, folder="INBOX")
    return render(request, "mail/compose.html", {
        **_nav(request, mailbox), "form": form, "carried": carried})


# --- registered letters ---------------------------------------------------------------------

class ReceiptForm(forms.Form):
    # kept byte for byte: a signed note ends with a newline
    document = forms.CharField(label=gettext_lazy("Receipt"), max_length=100_000,
                               widget=forms.Textarea, strip=False)


class LetterForm(forms.Form):
    sender = forms.ModelChoiceField(label=gettext_lazy("From"), queryset=Mailbox.objects.none())
    to = forms.ModelChoiceField(label=gettext_lazy("To the registry of"),
                                queryset=Administration.objects.none())
    reference = forms.CharField(label=gettext_lazy("Reference"), max_length=60)
    classification = forms.ChoiceField(label=gettext_lazy("Classification"),
                                       choices=Classification.choices)
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=300)
    body = forms.CharField(label=gettext_lazy("Letter"), widget=forms.Textarea(
        attrs={"rows": 10}), max_length=1_000_000)
    attachments = MultipleFileField(label=gettext_lazy("Attachments"), required=False)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sender"].queryset = selectors.sending_mailboxes_of(user)
        self.fields["sender"].empty_label = None  # one's own mailbox comes first
        self.fields["to"].queryset = selectors.administrations_with_registry()


@login_required
def letters_page(request):
    _agent(request)
    form = LetterForm(request.user, request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            letter = letters.send_letter(
                actor=request.user, sender=data["sender"], to=data["to"],
                reference=data["reference"], classification=data["classification"],
                subject=data["subject"], body=data["body"],
                attachments=_uploads(data["attachments"]))
        except DomainError as exc:
            for name, errors in exc.field_errors.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("The letter %(reference)s was sent.")
                             % {"reference": letter.reference})
            return redirect("mail:letter", pk=letter.pk)
    visible = letters.letters_visible_to(request.user)
    return render(request, "mail/letters.html", {"form": form, "letters": visible[:200],
                                                 **_nav(request)})


@login_required
def letter_page(request, pk: int):
    try:
        letter = letters.get_letter(request.user, pk)
    except DomainError:
        raise Http404 from None
    return render(request, "mail/letter.html", {
        "letter": letter, "receipts": letter.receipts.all(), "vkey": letters.verifier_key()})


@login_required
def receipt_download(request, pk: int, kind: str):
    try:
        letter = letters.get_letter(request.user, pk)
    except DomainError:
        raise Http404 from None
    receipt = get_object_or_404(letter.receipts, kind=kind)
    response = HttpResponse(receipt.document, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="receipt-{letter.pk}-{kind}.txt"'
    return response


def receipts_key(request):
    """Public: the key every receipt is signed with."""
    return HttpResponse(letters.verifier_key() + "\n", content_type="text/plain; charset=utf-8")


def receipts_verify(request):
    """Public: paste a receipt, see whether it is genuine and what it says."""
    result, error = None, ""
    form = ReceiptForm(request.POST if request.method == "POST" else None)
    document = form.cleaned_data["document"] if form.is_valid() else ""
    if form.is_bound and not form.is_valid():
        error = " ".join(form.errors.get("document", []))
    if document:
        from sahab.ledger.note import NoteError

        try:
            result = verify_receipt(document.replace("\r\n", "\n"), letters.verifier_key())
        except (NoteError, ValueError) as exc:
            error = str(exc)
    return render(request, "mail/verify.html", {"document": document, "result": result,
                                                 "error": error, "vkey": letters.verifier_key()})


# --- address book and settings ---------------------------------------------------------------

@login_required
def address_book(request):
    _agent(request)
    query = request.GET.get("q", "").strip()[:100]
    entries = selectors.address_book(query)
    output = request.GET.get("format", "")
    if output == "vcf":
        response = HttpResponse(selectors.vcards(entries), content_type="text/vcard; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="sahab-annuaire.vcf"'
        return response
    if output == "json":
        return JsonResponse({"entries": [e.as_dict() for e in entries]},
                            json_dumps_params={"ensure_ascii": False})
    return render(request, "mail/address_book.html", {"entries": entries[:500],
                                                      "total": len(entries), "query": query})


class NoticesForm(forms.Form):
    wanted = forms.MultipleChoiceField(
        label=gettext_lazy("Mail me about"), required=False,
        choices=NoticeKind.choices, widget=forms.CheckboxSelectMultiple)


@login_required
@require_POST
def choose_notices(request):
    """The account page's choice of the platform's notices (for every account)."""
    form = NoticesForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose among the kinds of notice listed."))
    else:
        services.choose_notices(actor=request.user, user=request.user,
                                wanted=form.cleaned_data["wanted"])
        messages.success(request, _("Saved."))
    return redirect("directory:home")


def notices_form(user) -> NoticesForm:
    """The form as the account page shows it: what the person receives today."""
    wanted = [k for k in NoticeKind.values if k not in services.muted_notices(user)]
    return NoticesForm(initial={"wanted": wanted})


class VacationForm(forms.Form):
    enabled = forms.BooleanField(label=gettext_lazy("Answer every sender once a day"),
                                 required=False)
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200, required=False)
    text = forms.CharField(label=gettext_lazy("Reply"), max_length=10_000, required=False,
                           widget=forms.Textarea(attrs={"rows": 5, "dir": "auto"}))


def _settings_page(request, mailbox: Mailbox | None, *, password: str | None = None,
                   vacation: VacationForm | None = None, status: int = 200):
    vacation = vacation or VacationForm(initial={"enabled": mailbox is not None and
                                                 services.vacation_of(mailbox)})
    response = render(request, "mail/settings.html", {
        "mailbox": mailbox, "password": password, "host": settings.MAIL_PUBLIC_HOST,
        "imap_port": settings.IMAP_PORT, "submission_port": settings.SUBMISSION_PORT,
        "imaps_port": settings.IMAPS_PORT, "smtps_port": settings.SMTPS_PORT,
        "managesieve_port": settings.MANAGESIEVE_PORT, "vacation": vacation}, status=status)
    response["Cache-Control"] = "no-store"  # the password is shown once
    return response


def _own_mailbox(request) -> Mailbox | None:
    return Mailbox.objects.filter(agent=_agent(request)).select_related("domain").first()


@login_required
def mail_settings(request):
    """The agent's mail client settings; a POST generates a new mail password."""
    mailbox = _own_mailbox(request)
    password = None
    if request.method == "POST" and mailbox is not None:
        try:
            password = services.set_password(actor=request.user, mailbox=mailbox)
        except DomainError as exc:
            messages.error(request, exc.detail)
    return _settings_page(request, mailbox, password=password)


@login_required
@require_POST
def vacation(request):
    """Turn the automatic reply on or off, with its subject and text."""
    mailbox = _own_mailbox(request)
    if mailbox is None:
        raise Http404
    form = VacationForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.set_vacation(actor=request.user, mailbox=mailbox, enabled=data["enabled"],
                                  subject=data["subject"], text=data["text"])
        except DomainError as exc:
            for name, errors in exc.field_errors.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
            messages.error(request, exc.detail)
        else:
            messages.success(request, _("Saved."))
            return redirect("mail:settings")
    return _settings_page(request, mailbox, vacation=form, status=400)


# --- mail client autoconfiguration ------------------------------------------------------------

def autoconfig(request):
    """Thunderbird's autoconfiguration (config-v1.1.xml) for the hosted domains."""
    from xml.sax.saxutils import escape

    address = request.GET.get("emailaddress", "")
    domain = address.rpartition("@")[2].lower() or request.get_host().split(":")[0] \
        .removeprefix("autoconfig.")
    if not MailDomain.objects.filter(name=domain, active=True).exists():
        domain = ""
    host = escape(settings.MAIL_PUBLIC_HOST)
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{escape(domain or settings.MAIL_HOSTNAME)}">
{"".join(f"    <domain>{escape(d)}</domain>{chr(10)}" for d in
         ([domain] if domain else MailDomain.objects.filter(active=True)
          .values_list("name", flat=True)))}    <displayName>sahab</displayName>
    <displayShortName>sahab</displayShortName>
    <incomingServer type="imap">
      <hostname>{host}</hostname>
      <port>{settings.IMAPS_PORT}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>{host}</hostname>
      <port>{settings.IMAP_PORT}</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{settings.SMTPS_PORT}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{settings.SUBMISSION_PORT}</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""
    return HttpResponse(body, content_type="application/xml; charset=utf-8")


# --- Dovecot's calls (auth policy, letter openings): 127.0.0.1, with the callback key -------

def _from_dovecot(presented: str) -> bool:
    from sahab.mail import dovecot

    return hmac.compare_digest(presented.encode(), dovecot.callback_key().encode())


@csrf_exempt
@require_POST
def dovecot_auth_policy(request):
    """Dovecot's auth policy (``?command=allow`` before a login, ``report`` after): the
    same failure counts as SMTP AUTH, shared by every process."""
    from sahab.mail import authguard

    if not _from_dovecot(request.headers.get("X-Sahab-Key", "").strip()):
        return HttpResponse(status=403)
    try:
        body = json.loads(request.body or b"{}")
        login, remote = str(body.get("login", ""))[:320], str(body.get("remote", ""))[:64]
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    command = request.GET.get("command")
    if command == "allow":
        if authguard.standing(remote, login).locked:
            return JsonResponse({"status": -1, "msg": "Too many failed logins; try later"})
        return JsonResponse({"status": 0, "msg": ""})
    if command == "report":
        if body.get("success") is True:
            authguard.succeeded(login)
        elif body.get("policy_reject") is not True:
            authguard.failed(remote, login)
        return JsonResponse({"status": 0, "msg": ""})
    return HttpResponse(status=400)


@csrf_exempt
@require_POST
def dovecot_events(request):
    """Dovecot's ``mail_opened`` events for body fetches: opening receipts of letters."""
    if not _from_dovecot(request.GET.get("key", "")):
        return HttpResponse(status=403)
    try:
        event = json.loads(request.body)
        fields = event["fields"]
        user, mailbox, uid = str(fields["user"]), str(fields["mailbox"]), int(fields["uid"])
    except (ValueError, KeyError, TypeError):
        return HttpResponse(status=400)
    if event.get("event") == "mail_opened":
        letters.opened_over_imap(user=user, mailbox=mailbox, uid=uid)
    return HttpResponse(status=204)


@csrf_exempt
def autodiscover(request):
    """Outlook's autodiscover (POX, ``/autodiscover/autodiscover.xml``): IMAP and SMTP
    over implicit TLS for the address Outlook asks about."""
    from xml.sax.saxutils import escape

    from defusedxml.ElementTree import ParseError
    from defusedxml.ElementTree import fromstring as parse_xml

    address = request.GET.get("emailaddress", "")
    if request.method == "POST":
        try:
            root = parse_xml(request.body[:20_000])
        except (ParseError, ValueError):
            return HttpResponse(status=400)
        found = next((e.text for e in root.iter() if e.tag.endswith("EMailAddress")), "")
        address = (found or "").strip()
    normal = services.normalise_address(address)
    if normal is None or not MailDomain.objects.filter(
            name=normal.rpartition("@")[2], active=True).exists():
        return HttpResponse(status=404)
    host = escape(settings.MAIL_PUBLIC_HOST)
    protocols = "".join(f"""
      <Protocol>
        <Type>{kind}</Type>
        <Server>{host}</Server>
        <Port>{port}</Port>
        <LoginName>{escape(normal)}</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
      </Protocol>""" for kind, port in (("IMAP", settings.IMAPS_PORT),
                                        ("SMTP", settings.SMTPS_PORT)))
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>{protocols}
    </Account>
  </Response>
</Autodiscover>
"""
    return HttpResponse(body, content_type="application/xml; charset=utf-8")


def mta_sts_policy(request):
    """The MTA-STS policy (RFC 8461) served at https://mta-sts.<domain>/.well-known/mta-sts.txt:
    other servers deliver to our MX over verified TLS only."""
    return HttpResponse(services.mta_sts_policy(), content_type="text/plain; charset=utf-8")

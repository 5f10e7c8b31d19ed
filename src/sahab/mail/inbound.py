"""Who really sent a message that arrives on the MX port: SPF, DKIM and DMARC.

- SPF (pyspf) checks the connecting address against the envelope sender's domain;
  DKIM (dkimpy) every signature; DMARC (authheaders) the alignment of either with the
  ``From:`` domain, and the sender's published policy.
- **Hosted domains are ours**: every message sahab sends for them is DKIM-signed with
  their keys. Mail that claims one of them — in ``From:``, ``Sender:`` or the envelope —
  without a valid signature of that very domain is refused at DATA (``550 5.7.1``),
  whatever DNS says.
- Other domains' failures follow their DMARC policy: ``reject`` is refused at DATA,
  ``quarantine`` is delivered to the recipient's Junk folder, ``none`` to the inbox.
- The verdict is written in an ``Authentication-Results`` header (RFC 8601) that the
  webmail shows; any such header that claims this server's name was forged and is
  removed before (``delivery.clean_headers``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authheaders import dmarc_per_from
from authheaders.dmarc_lookup import DMARCException
from authres import DKIMAuthenticationResult, SPFAuthenticationResult

from sahab.mail import dkim, resolver
from sahab.mail.delivery import PLAIN_ADDRESS, Refused, addresses_in, headers_of
from sahab.mail.routing import Routing

JUNK = "Junk"
# The fields a message has at most once (RFC 5322 §3.6).
SINGLE_FIELDS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date",
                 "Message-ID", "In-Reply-To", "References")


@dataclass
class Verdict:
    spf: str = "none"
    spf_domain: str = ""
    dkim: list[dkim.Result] = field(default_factory=list)
    dmarc: str = "none"
    policy: str = ""
    from_domain: str = ""
    folder: str = ""  # where the recipients get it ("" is the inbox)

    def methods(self) -> list[str]:
        """The ``method=result`` parts of Authentication-Results."""
        spf = f"spf={self.spf}" + (f" smtp.mailfrom={self.spf_domain}" if self.spf_domain else "")
        dmarc = f"dmarc={self.dmarc}"
        if self.policy:
            dmarc += f" (p={self.policy})"
        if self.from_domain:
            dmarc += f" header.from={self.from_domain}"
        return [spf, *(r.method() for r in self.dkim), dmarc]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _spf(peer: str, helo: str, mail_from: str) -> str:
    """The SPF result of the envelope sender (or of the HELO name for bounces)."""
    if not resolver.enabled():
        return "none"
    import spf

    resolver.configure()
    try:
        result, _explanation = spf.check2(i=peer, s=mail_from or f"postmaster@{helo}", h=helo,
                                          timeout=resolver.TIMEOUT)
    except Exception:  # an address or a name pyspf cannot use: nothing was checked
        return "permerror"
    return result or "none"


def _dns_txt(name: str) -> str | None:
    """authheaders' DNS hook: one TXT record as text, None when there is none."""
    name = name.rstrip(".")
    records = [r for r in resolver.txt_records(name) if r.lower().startswith("v=dmarc1")] \
        if name.startswith("_dmarc.") else resolver.txt_records(name)
    return records[0] if len(records) == 1 else None


def _dmarc(from_domain: str, spf: str, mail_from: str,
           signatures: list[dkim.Result]) -> tuple[str, str]:
    """(result, policy) of DMARC for a domain hosted elsewhere."""
    if not resolver.enabled():
        return "none", ""
    spf_result = SPFAuthenticationResult(result=spf, smtp_mailfrom=mail_from)
    passing = [DKIMAuthenticationResult(result="pass", header_d=r.domain)
               for r in signatures if r.verdict == "pass"] or [None]
    verdict, policy = "none", ""
    try:
        for signature in passing:
            verdict, _comment, _domain_used, policy = dmarc_per_from(
                from_domain, spf_result=spf_result, dkim_result=signature, dnsfunc=_dns_txt)
            if verdict == "pass":
                break
    except DMARCException:
        return "permerror", ""
    except resolver.TemporaryFailure:
        return "temperror", ""
    return verdict or "none", policy or ""


def authenticate(data: bytes, *, peer: str, helo: str, mail_from: str,
                 routing: Routing) -> Verdict:
    """The verdict on a message from outside; raises ``Refused`` for what is refused."""
    headers = headers_of(data)
    for name in SINGLE_FIELDS:
        if len(headers.get_all(name, [])) > 1:
            # a DKIM signature covers the bottom-most instance; readers show the first:
            # a genuine signed message replayed with a Subject: of one's own added on
            # top would read as verified
            raise Refused(f"554 5.6.0 The message has more than one {name}: header "
                          f"(RFC 5322 §3.6)")
    senders = addresses_in(headers, "From")
    if len(senders) != 1:
        raise Refused("550 5.7.1 A message must name exactly one sender in its From: header")
    if not PLAIN_ADDRESS.fullmatch(senders[0]):
        # RFC 5322 §3.4.1: an address with its domain. Without one no domain is claimed,
        # none is checked, and a display text such as "dg@finances.tn" spelt in an
        # encoded word passes for an address
        raise Refused("550 5.7.1 The From: header must give the sender's address, "
                      "local-part@domain (RFC 5322 §3.4.1)")
    from_domain = _domain(senders[0])
    verdict = Verdict(from_domain=from_domain, spf_domain=_domain(mail_from))
    verdict.dkim = dkim.verify(data, routing.records)
    signed_by = {r.domain.lower() for r in verdict.dkim if r.verdict == "pass"}

    claimed = {from_domain, _domain(mail_from),
               *(_domain(a) for a in addresses_in(headers, "Sender"))}
    for domain in sorted(d for d in claimed if d in routing.domains):
        if domain not in signed_by:
            raise Refused(f"550 5.7.1 Mail from {domain} must carry a valid DKIM signature of "
                          f"{domain}; this one does not (DMARC)")
    verdict.spf = _spf(peer, helo, mail_from)
    if from_domain in routing.domains:
        verdict.dmarc, verdict.policy = "pass", "reject"  # signed above, by its own keys
        return verdict
    verdict.dmarc, verdict.policy = _dmarc(from_domain, verdict.spf, mail_from, verdict.dkim)
    if verdict.dmarc == "fail":
        if verdict.policy == "reject":
            raise Refused(f"550 5.7.1 Refused by the DMARC policy of {from_domain}: neither "
                          f"SPF nor DKIM is aligned with the From: domain")
        if verdict.policy == "quarantine":
            verdict.folder = JUNK
    return verdict


# --- reading a verdict back (the webmail's mark) -------------------------------------------

VERIFIED, UNVERIFIED, FAILED = "verified", "unverified", "failed"


def mark(message, host: str) -> str:
    """What the webmail shows about the sender of a stored message: the verdict of this
    server's own (topmost) Authentication-Results — the only one it may trust."""
    for value in message.get_all("Authentication-Results", []):
        text = " ".join(str(value).split())
        authserv_id, _, results = text.partition(";")
        words = authserv_id.split()
        if not words or words[0].lower() != host.lower():
            continue
        parts = [p.strip().lower() for p in results.split(";")]
        found = {p.split("=", 1)[0]: p.split("=", 1)[1].split()[0] for p in parts if "=" in p}
        if found.get("auth") == "pass":
            return VERIFIED  # sent by a signed-in user of this platform
        dmarc = found.get("dmarc", "none")
        if dmarc == "pass":
            return VERIFIED
        dkim_results = [p.split("=", 1)[1].split()[0] for p in parts if p.startswith("dkim=")]
        if dmarc == "fail" or "fail" in dkim_results:
            return FAILED
        return UNVERIFIED
    return UNVERIFIED


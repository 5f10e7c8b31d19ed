"""A year of procurement for the demo: every procedure and outcome, and a few cases that
integrity indicators (red flags) should catch: a single bid, a short tendering period,
identical prices, the lowest bid disqualified, a winner far below the runner-up,
purchases split under the simplified threshold, a large amendment, a frequent loser.

Around those cases, ordinary purchases fill the year (``DEMO_TENDERS`` in all, or
``sahab demo --tenders N``): generated from a fixed seed, so every load is the same,
with two planted patterns among them (two companies at one address that keep bidding
together, and a commune that keeps awarding one builder).

Deadlines are in the past (or the near future for procedures still running); the
ledger records the steps when the demo is loaded, with their historical dates in the
data. Loading runs once: with tenders present, it does nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from tqdm import tqdm

from sahab.directory.models import Administration, Company
from sahab.directory.selectors import SYSTEM
from sahab.procurement import client, services
from sahab.procurement.models import Award, Bid, BidLot, Plan, PlanItem, Procedure, Tender

# The demo's specifications (a minimal PDF): the amended case publishes a new version.
SPECIFICATIONS = (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
                  b"trailer << /Root 1 0 R >>\n%%EOF\n")
OFFICERS = {"MF-DAF": "achats.finances", "MS-DAF": "achats.sante",
            "COM-TUNIS": "achats.tunis", "CNI": "achats.cni"}
EVALUATORS = {"MF-DAF": "eval.finances", "MS-DAF": "achats.sante",
              "COM-TUNIS": "eval.tunis", "CNI": "achats.cni"}
# each buyer's evaluation committee: its evaluator and this chair, both needed (quorum 2)
CHAIRS = {"MF-DAF": "commission.finances", "MS-DAF": "eval.sante",
          "COM-TUNIS": "commission.tunis", "CNI": "eval.cni"}
# the control of contract amendments beyond the ceiling, on each buyer's line
CONTROLLERS = {"COM-TUNIS": "controle.tunis"}


@dataclass(frozen=True)
class Case:
    buyer: str
    title: str
    lots: list[tuple[str, str, str]]  # title, CPV, estimated value
    bids: dict[str, dict[int, str]] = field(default_factory=dict)  # company → lot → price
    procedure: str = Procedure.OPEN
    days_ago: int = 300  # publication, counted back from today
    tendering_days: int = 30
    outcome: str = "contract"  # contract | cancelled | ongoing | evaluation | standstill | draft
    ineligible: tuple[str, ...] = ()
    quality: dict[str, int] = field(default_factory=dict)
    complaint: str = ""  # "" | "rejected" | "upheld"
    amendment: str = ""  # new value
    payments: tuple[str, ...] = ("0.4",)
    justification: str = ""
    invited: tuple[str, ...] = ()
    framework_of: str = ""
    question: str = ""
    plan: str = ""  # the planned purchase (its description) the tender carries out
    rectificatif: str = ""  # an amendment's rationale: new specifications, deadline + 7 days
    completed: bool = False  # the buyer accepts the contract as carried out, once paid


CASES = [
    Case("MF-DAF", "Acquisition de serveurs pour le centre informatique",
         [("Serveurs lame", "48820000-2", "420000"), ("Baies de stockage", "30233000-1", "250000")],
         {"Sahel Informatique": {1: "398500", 2: "241000"}, "Atlas Réseaux": {1: "405000"},
          "Bizerte Logiciels": {1: "431200", 2: "236400"}, "Gafsa Bâtiment": {2: "262000"}},
         days_ago=330, question="Les serveurs doivent-ils être livrés montés en baie ?",
         payments=("0.5", "0.5"), completed=True),
    Case("MF-DAF", "Licences bureautiques pour les recettes des finances",
         [("Licences", "48310000-4", "185000")],
         {"Djerba Digital": {1: "171000"}, "Bizerte Logiciels": {1: "176500"},
          "Kairouan Systèmes": {1: "182000"}},
         days_ago=300, complaint="rejected", amendment="188100", plan="Licences"),
    Case("MS-DAF", "Équipements informatiques des laboratoires hospitaliers",
         [("Postes et analyseurs connectés", "30213000-5", "310000")],
         {"Sahel Informatique": {1: "289000"}, "Tozeur Énergie IT": {1: "262000"},
          "Atlas Réseaux": {1: "301500"}},
         days_ago=280, quality={"Sahel Informatique": 88, "Tozeur Énergie IT": 61,
                                "Atlas Réseaux": 79}),
    Case("MS-DAF", "Maintenance du réseau des hôpitaux régionaux",
         [("Maintenance", "50312000-5", "140000")], {"Atlas Réseaux": {1: "139200"}},
         days_ago=260),
    Case("COM-TUNIS", "Éclairage public LED de l'avenue Habib-Bourguiba",
         [("Luminaires et pose", "34993000-4", "520000")],
         {"Tozeur Énergie IT": {1: "498000"}, "Gafsa Bâtiment": {1: "515000"}},
         days_ago=250, tendering_days=10, amendment="722000"),
    *[Case("COM-TUNIS", f"Fournitures de bureau, trimestre {q}",
           [("Papeterie et consommables", "30192000-1", "195000")],
           {"Monastir Fournitures de Bureau": {1: f"19{q}500"}, "Nabeul Conseil": {1: "194900"}},
           procedure=Procedure.SIMPLIFIED, days_ago=240 - 60 * q, tendering_days=12,
           plan="Fournitures de bureau" if q == 1 else "")
      for q in (1, 2, 3)],
    Case("MF-DAF", "Imprimantes réseau des directions régionales",
         [("Imprimantes", "30232110-8", "96000")],
         {"Kairouan Systèmes": {1: "88400"}, "Djerba Digital": {1: "88400"},
          "Gafsa Bâtiment": {1: "93000"}}, days_ago=220),
    Case("MS-DAF", "Logiciel de gestion des stocks de médicaments",
         [("Progiciel et paramétrage", "48000000-8", "230000")],
         {"Nabeul Conseil": {1: "176000"}, "Bizerte Logiciels": {1: "214500"},
          "Kairouan Systèmes": {1: "226000"}},
         days_ago=210, ineligible=("Nabeul Conseil",)),
    Case("MF-DAF", "Audit de sécurité des systèmes de paiement",
         [("Audit et tests d'intrusion", "72800000-8", "160000")],
         {"Djerba Digital": {1: "84000"}, "Atlas Réseaux": {1: "151000"},
          "Sahel Informatique": {1: "158500"}},
         days_ago=200, justification="Offre vérifiée : ressources propres, prix justifiés."),
    Case("CNI", "Accord-cadre d'hébergement en nuage des administrations",
         [("Bases de données gérées", "72317000-0", "900000"),
          ("Machines virtuelles", "72415000-2", "1200000"),
          ("Stockage objet et sauvegarde", "72318000-7", "600000")],
         {"Carthage Cloud": {1: "820000", 2: "1100000", 3: "560000"},
          "Medina Data Services": {1: "845000", 2: "1080000", 3: "575000"},
          "Jasmin Hosting": {1: "870000", 2: "1150000", 3: "540000"}},
         procedure=Procedure.FRAMEWORK, days_ago=190, payments=()),
    Case("CNI", "Hébergement du portail des e-services (marché subséquent)",
         [("Hébergement", "72415000-2", "150000")],
         {"Carthage Cloud": {1: "139000"}, "Medina Data Services": {1: "133500"}},
         procedure=Procedure.MINI_COMPETITION, days_ago=120, tendering_days=10,
         framework_of="Accord-cadre d'hébergement en nuage des administrations"),
    Case("MF-DAF", "Système d'information de la fiscalité locale",
         [("Conception et déploiement", "72212000-4", "780000")],
         {"Bizerte Logiciels": {1: "745000"}, "Sahel Informatique": {1: "762000"}},
         procedure=Procedure.RESTRICTED, days_ago=180),
    Case("MS-DAF", "Extension de garantie des scanners",
         [("Garantie", "50421000-2", "60000")], {"Tozeur Énergie IT": {1: "58500"}},
         procedure=Procedure.NEGOTIATED, days_ago=170, tendering_days=10,
         invited=("Tozeur Énergie IT",)),
    Case("COM-TUNIS", "Travaux de voirie du quartier Lafayette",
         [("Voirie", "45233140-2", "1500000")], {"Gafsa Bâtiment": {1: "1420000"}},
         days_ago=160, outcome="cancelled"),
    Case("MS-DAF", "Consommables de laboratoire", [("Consommables", "33696500-0", "45000")],
         {}, days_ago=150),
    Case("MF-DAF", "Câblage des bureaux régionaux",
         [("Câblage structuré", "45314300-4", "210000")],
         {"Atlas Réseaux": {1: "188000"}, "Kairouan Systèmes": {1: "196500"},
          "Gafsa Bâtiment": {1: "205000"}}, days_ago=140, complaint="upheld"),
    Case("COM-TUNIS", "Véhicules utilitaires pour la propreté",
         [("Véhicules", "34136000-9", "640000")],
         {"Tozeur Énergie IT": {1: "612000"}, "Gafsa Bâtiment": {1: "655000"}},
         days_ago=110),
    Case("MS-DAF", "Dossier patient informatisé",
         [("Progiciel hospitalier", "48814000-7", "950000")],
         {"Bizerte Logiciels": {1: "905000"}, "Sahel Informatique": {1: "918000"},
          "Djerba Digital": {1: "899000"}}, days_ago=31, tendering_days=29,
         outcome="evaluation"),
    Case("COM-TUNIS", "Mobilier urbain des jardins publics",
         [("Bancs et corbeilles", "34928400-2", "120000")],
         {"Gafsa Bâtiment": {1: "118000"}, "Nabeul Conseil": {1: "109000"}},
         days_ago=26, tendering_days=21, outcome="standstill"),
    Case("MF-DAF", "Renouvellement du parc informatique 2027",
         [("Ordinateurs portables", "30213100-6", "540000"),
          ("Écrans", "30231000-7", "120000")],
         {"Sahel Informatique": {1: "498000", 2: "111000"}, "Djerba Digital": {1: "512000"}},
         days_ago=5, tendering_days=30, outcome="ongoing",
         question="Le clavier arabe-français est-il exigé ?",
         rectificatif="Clavier bilingue arabe-français exigé (réponse à la question n° 1) : "
                      "cahier des charges mis à jour, date limite reportée d'une semaine."),
    Case("MF-DAF", "Étude de faisabilité du guichet unique", [("Étude", "73220000-0", "80000")],
         days_ago=0, outcome="draft"),
]

# Ordinary purchases of a year: (title, lot, CPV, usual value in dinars)
PURCHASES = [
    ("Maintenance des climatiseurs", "Maintenance préventive et curative", "50730000-1", 60_000),
    ("Fournitures de bureau", "Papeterie et consommables", "30192000-1", 45_000),
    ("Nettoyage des locaux", "Nettoyage", "90910000-9", 120_000),
    ("Gardiennage des sites", "Gardiennage", "79713000-5", 180_000),
    ("Postes de travail", "Ordinateurs de bureau", "30213300-8", 250_000),
    ("Licences antivirus", "Licences", "48761000-0", 70_000),
    ("Formation des agents", "Formation", "80500000-9", 40_000),
    ("Carburant des véhicules de service", "Carburant", "09134100-8", 150_000),
    ("Entretien des espaces verts", "Entretien", "77310000-6", 55_000),
    ("Câblage réseau des bâtiments", "Câblage structuré", "45314300-4", 90_000),
    ("Impression de documents administratifs", "Impression", "79810000-5", 35_000),
    ("Mobilier de bureau", "Mobilier", "39130000-2", 80_000),
    ("Développement d'une application métier", "Développement", "72212000-4", 300_000),
    ("Audit des comptes", "Audit", "79212000-3", 65_000),
    ("Réfection de façades", "Travaux", "45443000-4", 400_000),
]
BIDDERS = ["Sahel Informatique", "Atlas Réseaux", "Kairouan Systèmes", "Djerba Digital",
           "Bizerte Logiciels", "Tozeur Énergie IT", "Nabeul Conseil", "Gafsa Bâtiment",
           "Monastir Fournitures de Bureau"]
PARTNERS = ("Kairouan Systèmes", "Djerba Digital")  # one address: they bid together
FAVOURED = ("COM-TUNIS", "Gafsa Bâtiment")  # a commune that keeps awarding one builder


def ordinary_cases(count: int, seed: int = 2026) -> list[Case]:
    """``count`` ordinary purchases spread over the past year and the weeks to come,
    each with the outcome its dates allow: under contract and paid, awarded, under
    evaluation, open for bids; a few cancelled or without a bid."""
    rng = random.Random(seed)
    cases = []
    for n in range(1, count + 1):
        buyer = rng.choice(list(OFFICERS))
        title, lot, cpv, usual = rng.choice(PURCHASES)
        estimate = round(usual * rng.uniform(0.6, 1.6), -2)
        procedure = Procedure.SIMPLIFIED if estimate <= 150_000 and rng.random() < 0.4 \
            else Procedure.OPEN
        tendering = rng.choice([21, 30, 30, 45]) if procedure == Procedure.OPEN \
            else rng.choice([10, 15])
        days_ago = rng.randint(3, 360)
        closed_for = days_ago - tendering  # days since the deadline (negative: to come)
        outcome = ("ongoing" if closed_for < 1 else "evaluation" if closed_for < 7
                   else "standstill" if closed_for < 18 else
                   "cancelled" if rng.random() < 0.04 else "contract")
        bids = _ordinary_bids(rng, buyer, estimate) if rng.random() > 0.03 else {}
        paid = ("0.5", "0.5") if closed_for > 150 else ("0.4",) if closed_for > 60 else ()
        cases.append(Case(buyer, f"{title} — marché {n:03d}", [(lot, cpv, str(estimate))],
                          bids, procedure=procedure, days_ago=days_ago,
                          tendering_days=tendering, outcome=outcome, payments=paid))
    return cases


def _ordinary_bids(rng: random.Random, buyer: str, estimate: float) -> dict[str, dict]:
    names = rng.sample(BIDDERS, rng.choice([1, 2, 3, 3, 4, 4, 5]))
    if PARTNERS[0] in names and PARTNERS[1] not in names and rng.random() < 0.8:
        names.append(PARTNERS[1])
    prices = {name: estimate * rng.uniform(0.82, 1.08) for name in names}
    if buyer == FAVOURED[0] and rng.random() < 0.75:
        prices[FAVOURED[1]] = min(prices.values(), default=estimate) * 0.97
    return {name: {1: str(round(price, -2))} for name, price in prices.items()}



def _user(username):
    return get_user_model().objects.get(username=username)


def _company_user(name: str):
    return Company.objects.get(name=name).members.filter(is_company_admin=True).first().user


def _committee(case: Case, tender: Tender) -> None:
    """Three members, two of whom open; their one-time keys are made here and kept in
    SAHAB_HOME/demo-only-keys so that the demo (and its worker) can release them after
    the deadline. In production each member makes and keeps their own key."""
    names = [OFFICERS[case.buyer], EVALUATORS[case.buyer], "auditeur.haicop", "eval.finances",
             "eval.tunis"]
    users = [_user(n) for n in dict.fromkeys(names)][:3]
    services.name_committee(actor=SYSTEM, tender=tender, members=users, threshold=2)
    for user in users:
        private, public = client.committee_keygen()
        row = services.register_committee_key(actor=user, tender=tender,
                                              public_key=base64.b64decode(public))
        path = services.demo_key_path(tender, row.position)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(private)
        path.chmod(0o600)


def _company_key(name: str):
    """The demo company's bid-signing key (kept, for the demo only, under demo-only-keys;
    a real company keeps its own: ``sahab bid keygen``)."""
    company = Company.objects.get(name=name)
    path = settings.SAHAB_HOME / "demo-only-keys" / f"company-{company.pk}.pem"
    if path.exists():
        return client.load_key(path)
    key = client.new_signing_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    client.save_key(key, path)
    body = client.registration(company.pk, key)
    services.register_signing_key(actor=_company_user(name),
                                  public_key=base64.b64decode(body["public_key"]),
                                  proof=base64.b64decode(body["proof"]))
    return key


def _detail(tender: Tender) -> dict:
    return {"reference": tender.reference,
            "lots": [{"number": lot.number} for lot in tender.lots.all()],
            "committee": {"threshold": tender.committee_threshold, "members": [
                {"public_key": base64.b64encode(bytes(m.public_key)).decode()}
                for m in tender.committee.all()]}}


def _run(case: Case, now: dt.datetime, tenders: dict[str, Tender]) -> Tender:
    buyer = Administration.objects.get(code=case.buyer)
    published = now - dt.timedelta(days=case.days_ago)
    enquiry = published + dt.timedelta(days=max(2, case.tendering_days // 2))
    deadline = published + dt.timedelta(days=case.tendering_days)
    if case.outcome == "draft":
        enquiry, deadline = now + dt.timedelta(days=20), now + dt.timedelta(days=40)
    tender = services.create_tender(
        actor=SYSTEM, buyer=buyer, title=case.title, procedure=case.procedure,
        enquiry_deadline=enquiry, submission_deadline=deadline,
        lots=[{"title": t, "cpv": c, "estimated_value": v} for t, c, v in case.lots],
        award_criteria="weighted" if case.quality else "lowest_price",
        price_weight=60 if case.quality else 100,
        framework=tenders.get(case.framework_of),
        invited=[Company.objects.get(name=n) for n in case.invited],
        plan_item=PlanItem.objects.filter(plan__administration=buyer,
                                          description=case.plan).first() if case.plan else None,
        now=published - dt.timedelta(days=1))
    if case.outcome == "draft":
        return tender
    _committee(case, tender)
    services.name_evaluation_committee(
        actor=SYSTEM, tender=tender, chair=_user(CHAIRS[case.buyer]), quorum=2,
        members=[_user(CHAIRS[case.buyer]), _user(EVALUATORS[case.buyer])],
        now=published - dt.timedelta(hours=12))
    tender = services.publish_tender(actor=SYSTEM, tender=tender, now=published)
    if case.procedure == Procedure.RESTRICTED:
        for name in case.bids:
            participation = services.apply_for_prequalification(
                actor=_company_user(name), tender=tender)
            services.decide_prequalification(actor=SYSTEM, participation=participation,
                                             qualified=True, now=published + dt.timedelta(hours=2))
        participation = services.apply_for_prequalification(
            actor=_company_user("Gafsa Bâtiment"), tender=tender)
        services.decide_prequalification(
            actor=SYSTEM, participation=participation, qualified=False,
            reason="Références insuffisantes : aucun marché comparable réalisé au cours des "
                   "trois dernières années (article 4 du règlement de la consultation).",
            now=published + dt.timedelta(hours=2))
    if case.question:
        asker = _company_user(next(iter(case.bids)))
        question = services.ask_question(actor=asker, tender=tender, text=case.question,
                                         now=published + dt.timedelta(days=1))
        services.answer_question(actor=SYSTEM, question=question,
                                 answer="Oui, comme précisé au cahier des charges.",
                                 now=published + dt.timedelta(days=2))
    for hours, (name, prices) in enumerate(case.bids.items(), start=1):
        # the last day before the deadline, or the last hours for a call still open
        sent = min(deadline - dt.timedelta(hours=30 - 3 * hours),
                   now - dt.timedelta(hours=len(case.bids) + 1 - hours))
        company = Company.objects.get(name=name)
        envelope = client.seal_bid(_detail(tender), company_id=company.pk,
                                   key=_company_key(name),
                                   prices={str(k): v for k, v in prices.items()},
                                   technical_offer=f"Offre technique de {name}.")
        services.submit_bid(actor=_company_user(name), tender=tender,
                            envelope=envelope.encode("ascii"),
                            now=sent)
    if case.rectificatif:
        # after the bids: their companies are told and must confirm or replace their
        # sealed bids; the first confirms, the others still have to (their account page
        # says so)
        services.amend_tender(actor=SYSTEM, tender=tender, rationale=case.rectificatif,
                              documents=[("cahier-des-charges.pdf", SPECIFICATIONS)],
                              submission_deadline=deadline + dt.timedelta(days=7),
                              now=now - dt.timedelta(minutes=30))
        deadline += dt.timedelta(days=7)
        first = next(iter(case.bids))
        services.confirm_bid(actor=_company_user(first), bid=tender.bids.get(
            company__name=first, status=Bid.Status.SUBMITTED),
            now=now - dt.timedelta(minutes=20))
    if case.outcome == "cancelled":
        return services.cancel_tender(actor=SYSTEM, tender=tender,
                                      reason="Le besoin a été revu par la commune.",
                                      now=min(deadline - dt.timedelta(hours=1), now))
    if case.outcome == "ongoing":
        return tender
    # two of the three members release their keys, and the bids open (proven against
    # the tree the loader's own transaction writes: no checkpoint may cover it yet)
    services.advance_tenders(now=deadline + dt.timedelta(minutes=1), signed=False)
    tender.refresh_from_db()
    if tender.state != "evaluation":
        return tender  # no valid bid: unsuccessful
    # the committee evaluates the next day and awards within the week (or an hour ago,
    # for a procedure that closed days ago)
    _evaluate(case, tender, min(deadline + dt.timedelta(days=1), now - dt.timedelta(hours=3)))
    if case.outcome == "evaluation":
        return tender
    awarded_at = min(deadline + dt.timedelta(days=6), now - dt.timedelta(hours=1))
    services.award_tender(actor=SYSTEM, tender=tender, justification=case.justification,
                          now=awarded_at)
    if case.complaint:
        _complain(case, tender, awarded_at)
    if case.outcome == "standstill":
        Tender.objects.filter(pk=tender.pk).update(
            standstill_until=now + dt.timedelta(days=5))
        return tender
    tender.refresh_from_db()
    services.advance_tenders(now=tender.standstill_until + dt.timedelta(minutes=1),
                             signed=False)
    signed = tender.standstill_until + dt.timedelta(days=2)
    start = (signed + dt.timedelta(days=1)).date()
    for award in tender.awards.filter(status=Award.Status.ACTIVE):
        contract = services.sign_contract(actor=_user(OFFICERS[case.buyer]), award=award,
                                          start_date=start,
                                          end_date=start + dt.timedelta(days=365),
                                          now=min(signed, now))
        # the supplier countersigns the next day: the contract is in force
        contract = services.countersign_contract(
            actor=_company_user(award.supplier.name), contract=contract,
            terms_sha256_seen=contract.terms_sha256,
            now=min(signed + dt.timedelta(days=1), now))
        if case.amendment and award.lot.number == 1:
            amended = min(signed + dt.timedelta(days=30), now)
            amendment = services.amend_contract(
                actor=_user(OFFICERS[case.buyer]), contract=contract,
                new_value=case.amendment,
                justification="Quantités complémentaires demandées.", now=amended)
            if amendment.status == "proposed":  # beyond the ceiling: the control approves
                services.decide_amendment(
                    actor=_user(CONTROLLERS[case.buyer]), amendment=amendment, approve=True,
                    reason="Besoin complémentaire justifié ; crédits disponibles.",
                    now=min(amended + dt.timedelta(days=5), now))
            contract.refresh_from_db()
        for n, share in enumerate(case.payments, start=1):
            services.record_payment(actor=SYSTEM, contract=contract, milestone=f"Tranche {n}",
                                    amount=(contract.value * Decimal(share)).quantize(
                                        Decimal("0.001")),
                                    now=min(signed + dt.timedelta(days=45 * n), now))
        if case.completed:
            services.complete_contract(
                actor=_user(OFFICERS[case.buyer]), contract=contract,
                reason="Réception définitive prononcée : livraison conforme.",
                now=min(signed + dt.timedelta(days=45 * len(case.payments) + 10), now))
    tender.refresh_from_db()
    return tender


def _evaluate(case: Case, tender: Tender, at: dt.datetime, *, again: bool = False) -> None:
    """The committee's session starting ``at``, a decision a minute: the evaluator
    decides, abnormally low prices are explained by their bidders and the explanations
    accepted by the chair, and both members approve the report."""
    evaluator, chair = _user(EVALUATORS[case.buyer]), _user(CHAIRS[case.buyer])
    minute = dt.timedelta(minutes=1)
    if not again:
        for member in (chair, evaluator):
            services.declare_conflict_of_interest(actor=member, tender=tender,
                                                  no_conflict=True, now=at)
    rows = BidLot.objects.filter(bid__tender=tender).select_related("bid__company")
    if again:  # only the lots an upheld complaint sent back to evaluation
        rows = rows.filter(lot__needs_evaluation=True)
    for row in rows:
        name = row.bid.company.name
        eligible = name not in case.ineligible
        at += minute
        services.decide_eligibility(actor=evaluator, bid_lot=row, eligible=eligible,
                                    reason="" if eligible else
                                    "Attestation de la CNSS manquante.", now=at)
        if case.quality:
            services.score_quality(actor=evaluator, bid_lot=row, score=case.quality[name],
                                   now=at)
    at += minute
    services.complete_evaluation(actor=SYSTEM, tender=tender, now=at)
    low = BidLot.objects.filter(bid__tender=tender, abnormally_low=True, eligible=True,
                                rank__isnull=False).exclude(
        lot__awards__status=Award.Status.ACTIVE).select_related("bid__company", "lot")
    for row in low:
        asked = services.request_explanation(
            actor=chair, bid_lot=row, now=at + minute,
            question="Votre prix est anormalement bas : détaillez sa composition "
                     "(ressources, sous-traitance, marges).")
        services.answer_explanation(
            actor=_company_user(row.bid.company.name), explanation=asked, now=at + 20 * minute,
            answer="Ressources propres déjà mobilisées et marge réduite, détail joint.")
        services.decide_explanation(
            actor=chair, explanation=asked, accepted=True, now=at + 40 * minute,
            reason=case.justification or "Explication vérifiée : le prix est tenable.")
        at += 41 * minute
        services.complete_evaluation(actor=SYSTEM, tender=tender, now=at)
    report = tender.evaluation_reports.order_by("-number").first()
    for member in (chair, evaluator):
        at += minute
        services.approve_evaluation(actor=member, tender=tender, sha256=report.sha256, now=at)


def _complain(case: Case, tender: Tender, awarded_at: dt.datetime) -> None:
    """During the standstill a losing bidder complains against the award of lot 1; the
    complaints body admits it (the lot is suspended), then rejects it (the standstill
    gets back the time the suspension took) or upholds it (the lot is evaluated again
    and awarded anew). Another bidder's complaint is ruled inadmissible."""
    body = _user("auditeur.haicop")
    day = dt.timedelta(days=1)
    winner = tender.awards.first().supplier.name
    losers = [n for n in case.bids if n != winner]
    complaint = services.file_complaint(actor=_company_user(losers[0]), tender=tender,
                                        text="Nous contestons l'analyse de notre offre.",
                                        lots=[1], now=awarded_at + 2 * day)
    services.rule_admissibility(actor=body, complaint=complaint, admissible=True,
                                reason="Recours motivé, déposé dans le délai par un "
                                       "soumissionnaire du lot.", now=awarded_at + 3 * day)
    upheld = case.complaint == "upheld"
    if not upheld and len(losers) > 1:
        other = services.file_complaint(actor=_company_user(losers[1]), tender=tender,
                                        text="Nous demandons l'annulation de la procédure.",
                                        lots=[1], now=awarded_at + 3 * day)
        services.rule_admissibility(actor=body, complaint=other, admissible=False,
                                    reason="Le recours n'expose aucun grief précis contre "
                                           "l'évaluation ou l'attribution.",
                                    now=awarded_at + 4 * day)
    services.decide_complaint(
        actor=body, complaint=complaint, upheld=upheld,
        remedy="reevaluate" if upheld else "",
        decision="L'offre retenue ne respectait pas le délai d'exécution exigé."
        if upheld else "L'analyse des offres est conforme au règlement de la consultation.",
        now=awarded_at + 5 * day)
    if upheld:
        tender.refresh_from_db()
        # a copy: CASES stay as written, however many times the demo loads in a process
        _evaluate(replace(case, ineligible=(*case.ineligible, winner)), tender,
                  awarded_at + 5 * day + dt.timedelta(hours=2), again=True)
        services.award_tender(actor=SYSTEM, tender=tender, now=awarded_at + 6 * day)


def _plans(now: dt.datetime) -> None:
    for code, items in {"MF-DAF": [("Serveurs et stockage", "48820000-2", "670000", 1),
                                   ("Licences", "48310000-4", "185000", 2)],
                        "COM-TUNIS": [("Fournitures de bureau", "30192000-1", "585000", 1)]
                        }.items():
        plan = services.create_plan(actor=SYSTEM, administration=Administration.objects.get(
            code=code), year=now.year, title=f"Plan des achats {now.year}")
        for description, cpv, value, quarter in items:
            services.add_plan_item(actor=SYSTEM, plan=plan, description=description, cpv=cpv,
                                   budget_line="Titre II", estimated_value=value,
                                   quarter=quarter, procedure="open")


def load(previous: dict, data: dict) -> None:
    if not (Tender.objects.exists() or Plan.objects.exists()):
        now = timezone.now()
        _plans(now)
        tenders: dict[str, Tender] = {}
        cases = CASES + ordinary_cases(max(0, settings.DEMO_TENDERS - len(CASES)))
        # a bar of its own: with hundreds of tenders this is most of the demo's minute
        for case in tqdm(cases, desc="Tenders", unit="tender", leave=False, disable=None):
            tenders[case.title] = _run(case, now, tenders)
    data["procurement"] = {
        "tenders": Tender.objects.count(),
        "open_for_bids": list(Tender.objects.filter(state__in=["enquiries", "tendering"])
                              .values_list("reference", flat=True)),
    }

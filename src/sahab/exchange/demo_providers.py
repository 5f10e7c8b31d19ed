"""Two provider services that the demo runs inside sahab, standing for the information
systems of two ministries: a civil-registry lookup and a tax-status certificate. They
answer with fake but stable records, and only to calls relayed by the gateway."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from sahab.core.problems import problem_response

FIRST_NAMES = ["Sonia", "Walid", "Amel", "Karim", "Leila", "Mehdi", "Rim", "Hichem", "Nadia",
               "Yassine", "Fatma", "Anis", "Olfa", "Sami", "Ines", "Mohamed"]
LAST_NAMES = ["Gharbi", "Hammami", "Ben Salah", "Trabelsi", "Bouazizi", "Jlassi", "Chaabane",
              "Baccouche", "Mejri", "Dridi", "Ayari", "Zouari", "Sassi", "Karoui", "Belhadj"]
CITIES = ["Tunis", "Sfax", "Sousse", "Kairouan", "Bizerte", "Gabès", "Ariana", "Gafsa"]


def _seed(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big")


def _relayed(request) -> bool:
    return bool(request.headers.get("X-Road-Client") and request.headers.get("X-Road-Id"))


@require_GET
def person(request, cin: str):
    """État civil: a person by national identity card number (8 digits)."""
    if not _relayed(request):
        return problem_response(403, "Forbidden", "Only calls through the gateway are served.")
    if not re.fullmatch(r"\d{8}", cin):
        return problem_response(400, "Bad request", "A CIN has eight digits.")
    if cin.startswith("0000"):
        return problem_response(404, "Not found", f"No person with CIN {cin}.")
    seed = _seed(cin)
    born = dt.date(1950, 1, 1) + dt.timedelta(days=seed % 20000)
    return JsonResponse({"cin": cin, "prenom": FIRST_NAMES[seed % len(FIRST_NAMES)],
                         "nom": LAST_NAMES[(seed >> 8) % len(LAST_NAMES)],
                         "date_naissance": born.isoformat(),
                         "lieu_naissance": CITIES[(seed >> 16) % len(CITIES)],
                         "etat": "vivant" if seed % 17 else "décédé"})


@require_GET
def tax_status(request, matricule: str):
    """Fiscalité: whether a taxpayer is in good standing (attestation de situation fiscale)."""
    if not _relayed(request):
        return problem_response(403, "Forbidden", "Only calls through the gateway are served.")
    if not re.fullmatch(r"\d{7}[A-Z]", matricule):
        return problem_response(400, "Bad request", "The matricule fiscal is 7 digits and a "
                                                    "letter, e.g. 1402317K.")
    seed = _seed(matricule)
    regular = seed % 5 != 0
    return JsonResponse({"matricule_fiscal": matricule,
                         "situation": "en règle" if regular else "non en règle",
                         "attestation": f"ASF-{seed % 10**8:08d}" if regular else None,
                         "valable_jusqu_au": (dt.date.today() + dt.timedelta(days=90))
                         .isoformat() if regular else None})

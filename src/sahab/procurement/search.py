"""What the public tender search matches besides a tender's own texts: the names (and
matricules) of the companies whose bids were opened, and the names of those it was
awarded to, kept on the tender itself (``Tender.party_names``).

With every searchable text a column of the tender's row, one search is one scan of the
tenders in the list's order that stops at the page's last match, or, for a rare word, the
union of trigram indexes (migration 0021): it no longer gathers every match of every way
of matching before a page of 25 is taken. The column is rewritten, in SQL, by whatever
changes what it holds: the opening (bidders become public), the award, a company's new
name. A sealed bid names nobody: its company enters the column only at the opening.
"""

# The statements are written from model table names and constants only; ids go as
# parameters (S608).
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections

from sahab.directory.models import Company
from sahab.procurement.models import Award, Bid, Tender

SEPARATOR = "\n"  # between names: no search word spans two (a query holds no line break)
CHUNK = 1000  # tenders rewritten by one statement

def party_names_sql(vendor: str) -> str:
    """An SQL expression of the party names of the row of the tenders' table being
    updated, in the dialect of ``vendor``."""
    from sahab.procurement.selectors import OPENED  # selectors searches through this module

    sep = "E'\\n'" if vendor == "postgresql" else "char(10)"
    aggregate = "string_agg" if vendor == "postgresql" else "group_concat"

    def joined(expression: str) -> str:
        return f"{aggregate}({expression}, {sep})"

    tender, bid, award, company = (f'"{m._meta.db_table}"'
                                   for m in (Tender, Bid, Award, Company))
    opened = ", ".join(f"'{status}'" for status in OPENED)
    bidders = (f"SELECT {joined(f'c.name || {sep} || c.matricule_fiscal')} FROM {bid} b "
               f"JOIN {company} c ON c.id = b.company_id "
               f"WHERE b.tender_id = {tender}.id AND b.status IN ({opened})")
    winners = (f"SELECT {joined('c.name')} FROM {award} a "
               f"JOIN {company} c ON c.id = a.supplier_id WHERE a.tender_id = {tender}.id")
    return f"coalesce(({bidders}), '') || {sep} || coalesce(({winners}), '')"


def refresh_party_names(tender_ids: Iterable[int] | None = None, *,
                        using: str = "default") -> int:
    """Rewrite the party names of ``tender_ids`` (every tender when None) from the bids
    and awards as they are now; returns the number of tenders rewritten."""
    connection = connections[using]
    update = (f'UPDATE "{Tender._meta.db_table}" '
              f"SET party_names = {party_names_sql(connection.vendor)}")
    with connection.cursor() as cursor:
        if tender_ids is None:
            cursor.execute(update)
            return cursor.rowcount
        ids, done = sorted(set(tender_ids)), 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            cursor.execute(f"{update} WHERE id IN ({', '.join(['%s'] * len(chunk))})", chunk)
            done += cursor.rowcount
        return done


def refresh_for_company(company_id: int) -> int:
    """A company renamed (or its matricule corrected): the tenders naming it follow."""
    from sahab.procurement.selectors import OPENED

    tenders = set(Bid.objects.filter(company_id=company_id, status__in=OPENED)
                  .values_list("tender_id", flat=True))
    tenders |= set(Award.objects.filter(supplier_id=company_id)
                   .values_list("tender_id", flat=True))
    return refresh_party_names(tenders)

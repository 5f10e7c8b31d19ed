"""Every interface string is translated into French and Arabic.

Besides the project's catalog (``src/sahab/locale``), each pillar may keep its own
(``src/sahab/<app>/locale``): Django merges them all.
"""

import gettext
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "src" / "sahab" / "locale"


def po_msgids(path: Path) -> set[str]:
    """The msgids of a .po file (continuation lines joined), header excluded."""
    ids, current, in_id = set(), [], False
    for line in path.read_text().splitlines():
        if line.startswith("msgid "):
            current, in_id = [line[6:]], True
        elif in_id and line.startswith('"'):
            current.append(line)
        else:
            if in_id:
                text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', "".join(current)))
                if text:
                    ids.add(text.encode().decode("unicode_escape").encode("latin-1")
                            .decode("utf-8"))
            in_id = False
    return ids


def catalogs(lang: str) -> list[Path]:
    package = LOCALE.parent
    return sorted(package.glob(f"**/locale/{lang}/LC_MESSAGES/django.po"))


@pytest.mark.parametrize("po", [p for lang in ("fr", "ar") for p in catalogs(lang)],
                         ids=lambda p: str(p.relative_to(LOCALE.parent)))
def test_every_string_has_a_compiled_translation(po):
    with open(po.with_suffix(".mo"), "rb") as f:
        catalog = gettext.GNUTranslations(f)
    untranslated = [m for m in po_msgids(po) if m not in catalog._catalog
                    and (m, 0) not in catalog._catalog]
    assert untranslated == []

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


ARABIC = re.compile("[\u0600-\u06ff]")


@pytest.mark.django_db
def test_every_model_in_the_admin_is_named_in_french_and_arabic():
    """The administration site names each model in the reader's language (it said
    "Witnesss"): a name of the catalogue, in Arabic letters in Arabic."""
    from django.contrib import admin
    from django.utils import translation

    french = translation.trans_real.translation("fr")._catalog
    missing = []
    for model in admin.site._registry:
        if not model.__module__.startswith("sahab."):
            continue  # a library's own (the task queue's results)
        opts = model._meta
        with translation.override("en"):
            names = (str(opts.verbose_name), str(opts.verbose_name_plural))
        with translation.override("ar"):
            arabic = str(opts.verbose_name_plural)
        if not ARABIC.search(arabic) or not all(name in french for name in names):
            missing.append(opts.label)
    assert missing == []

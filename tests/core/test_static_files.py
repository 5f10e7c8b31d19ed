"""``sahab init`` collects the static files again only when their sources changed, so that
installations sharing ``SAHAB_STATIC_ROOT`` (and every upgrade or restore) skip the
seconds of compression when nothing changed."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders

from sahab.core.setup import SOURCES_DIGEST_FILE, collect_static


@pytest.fixture
def static_root(settings, tmp_path):
    """A folder of its own, collected without compression (the digest names the storage)."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "added.css").write_text("body { color: black }\n")
    settings.STATICFILES_DIRS = [extra]
    finders.get_finder.cache_clear()
    yield settings.STATIC_ROOT, extra
    finders.get_finder.cache_clear()


def test_collects_once_then_again_when_a_source_changes(static_root):
    root, extra = static_root
    assert collect_static() is True
    assert (root / "sahab" / "sahab.css").is_file()
    assert (root / "added.css").read_text() == "body { color: black }\n"
    assert collect_static() is False

    (extra / "added.css").write_text("body { color: navy }\n")
    assert collect_static() is True
    assert (root / "added.css").read_text() == "body { color: navy }\n"

    (extra / "added.css").unlink()
    assert collect_static() is True
    assert not (root / "added.css").exists(), "a removed source leaves no stale copy"


def test_an_interrupted_collection_is_done_again_from_a_clean_folder(static_root):
    root, _ = static_root
    assert collect_static() is True
    # a collection killed half-way has not written its digest yet, and may leave anything
    (root / SOURCES_DIGEST_FILE).unlink()
    (root / "sahab" / "sahab.css").write_text("half-written")
    (root / "leftover.js").write_text("alert(1)")
    assert collect_static() is True
    assert (root / "sahab" / "sahab.css").read_text() != "half-written"
    assert not (root / "leftover.js").exists()


def test_a_tampered_digest_does_not_skip_the_collection(static_root):
    root, _ = static_root
    collect_static()
    (root / SOURCES_DIGEST_FILE).write_text("0" * 64 + "\n")
    assert collect_static() is True

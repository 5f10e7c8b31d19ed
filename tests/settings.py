"""Settings for the test suite: the product's settings on a throwaway SAHAB_HOME."""

import os
import tempfile
from pathlib import Path

os.environ["SAHAB_HOME"] = tempfile.mkdtemp(prefix="sahab-test-")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("DATABASE_REPLICA_URL", None)  # the replica tests start their own
os.environ.pop("SAHAB_DBAAS_URL", None)  # tests that make databases ask for a cluster
os.environ.pop("SAHAB_STATIC_ROOT", None)  # the run's own: see tests.conftest.shared_static_root

from sahab.settings import *  # noqa: F403
from sahab.settings import SAHAB_HOME, _database
from tests.databases import test_database_url

_url = test_database_url(Path(SAHAB_HOME))
DATABASES = {"default": _database(_url)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not Django's in-memory default: WAL and several connections, as in production.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(SAHAB_HOME) / "test.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_sahab_{os.getpid()}"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Argon2 is the product's hasher (see test_passwords_are_hashed_with_argon2); tests use a
# fast one for the many accounts they create.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                    "django.contrib.auth.hashers.Argon2PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405  4xx are expected here
# Every test sees the data it made: nothing computed is kept between requests.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
RED_FLAGS_RECOMPUTE_WHEN_STALE = True  # no worker runs between a test's steps
DEMO_TENDERS = 0  # the demo's planted cases only: its ordinary purchases are tested apart
EXCHANGE_LOG_BATCH_SECONDS = 0  # every exchange is in the log when its answer ends
MAIL_DOMAINS_ALLOWED = [*MAIL_DOMAINS_ALLOWED, "*.test"]  # noqa: F405

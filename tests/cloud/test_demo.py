"""The demo marketplace, loaded with a real DBaaS cluster: its orders are provisioned,
billed since they were placed, its budgets alert, and its FOCUS export conforms."""

from sahab.cloud import focus
from sahab.cloud.models import Alert, Instance, Label, Order, UsageRecord
from sahab.cloud.selectors import catalogue
from sahab.core import keys
from sahab.core.demo import load_demo
from sahab.ledger import services as ledger
from tests.cloud.conftest import drop_leftover_databases
from tests.cloud.focus_rules import Model


def test_the_demo_marketplace_runs_on_real_databases(sahab_home, db, dbaas, tmp_path):
    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    ledger._signer.cache_clear()
    try:
        data = load_demo()
        assert data["cloud"]["active_instances"] == 5 and data["osb"]["password"]
        assert Order.objects.filter(status="pending_approval").count() == 1
        assert Instance.objects.filter(state="active").count() == 5
        assert UsageRecord.objects.count() > 10_000
        kinds = set(Alert.objects.values_list("kind", flat=True))
        assert {"budget", "provider"} <= kinds
        rows = catalogue()
        jasmin = [r for r in rows if r.provider.company.name == "Jasmin Hosting"]
        assert jasmin and not any(r.orderable for r in jasmin)
        assert all(Label.G_CLOUD in r.labels for r in rows if r.orderable)
        path = tmp_path / "focus.csv"
        assert focus.write(path) > 500
        report = Model(focus.SUPPORTED).check(path)
        assert report.failed == {} and len(report.checked) > 250
        again = load_demo()  # idempotent: nothing ordered twice
        assert again["cloud"]["orders"] == data["cloud"]["orders"]
    finally:
        drop_leftover_databases()

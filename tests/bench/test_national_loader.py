"""The national benchmark's loader: what it writes is what sahab itself would serve."""

import pytest
from django.db import connection  # noqa: F401 (read by the skipif condition)

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif("connection.vendor != 'postgresql'")]


def test_loaded_ledger_proves_and_the_public_pages_read_the_loaded_data(client, sahab_home):
    from bench.bench_national import fill

    from sahab.ledger import merkle
    from sahab.ledger import services as ledger
    from sahab.procurement.models import Award, Contract, Tender

    setup = fill(0.00002, progress=False)  # 20 tenders, 200 entries

    assert setup["counts"]["tenders"] == Tender.objects.count() == 20
    assert Contract.objects.count() == Award.objects.count() > 20
    size = setup["size"]
    assert size == 200 == ledger.tree_size()
    root = ledger.root_at(size)
    for index in (0, 77, size - 1):
        leaf = merkle.leaf_hash(bytes(ledger.get_entry(index).body))
        assert merkle.root_from_inclusion_proof(
            index, size, leaf, ledger.inclusion_proof(index, size)) == root
    assert client.get(f"/tenders/{setup['tender']}/").status_code == 200
    assert client.get(f"/companies/{setup['company']}/").status_code == 200
    assert client.get(f"/ocds/records/{setup['ocid']}").status_code == 200
    assert client.get(f"/ledger/proof/consistency?old=3&new={size}").status_code == 200
    # the loader's last step keeps every process compiled, as the services do
    from sahab.procurement import ocds, redflags
    from sahab.procurement.models import Release

    assert ocds.compile_all() == Release.objects.values("ocid").distinct().count() > 0
    assert ocds.compiled_are_current()
    assert list(redflags.compiled_releases()) == [r["compiledRelease"]
                                                  for r in ocds.iter_records()]

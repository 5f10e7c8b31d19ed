import pytest

from tests.module_data import demo_of_module, on_a_copy_of


@pytest.fixture(scope="module")
def _demo_of_module(django_db_setup, django_db_blocker, tmp_path_factory):
    """Each module's tests read one demo, loaded once (seconds): see tests.module_data."""
    home = tmp_path_factory.mktemp("portal-demo")
    with demo_of_module(django_db_blocker, home) as data:
        yield home, data


@pytest.fixture
def demo(_demo_of_module, db, settings, tmp_path):
    """The demo's data, on a copy of its SAHAB_HOME; what the test writes is rolled back."""
    home, data = _demo_of_module
    on_a_copy_of(home, settings, tmp_path)
    return data

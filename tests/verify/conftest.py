import pytest

from deepvision.verify import SymbolicPool


@pytest.fixture(scope="session")
def pool():
    p = SymbolicPool(workers=2, timeout=3.0)
    yield p
    p.close()

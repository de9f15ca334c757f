"""The emulator layer: each module starts from what it creates itself and leaves nothing.

Tests here create resources with invented names (``ecom-test-...``) that the course's
teardown rightly does not touch (it selects by the course's tags): forget them after each
module, so the next layer's snapshots see only what it deployed.
"""

import pytest

from ecomlib.local import server


@pytest.fixture(autouse=True, scope="module")
def _forget_what_the_module_created():
    yield
    if server.status() is not None:
        server.reset()

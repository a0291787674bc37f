from tests.operators.conftest import client, emulator  # noqa: F401  (shared fixtures)

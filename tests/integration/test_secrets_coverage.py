"""Every example that uses secrets is the one test_secrets_in_image.py scans for leaks.

That module builds its example with ``-v`` (the full build log) and scans the image's history,
configuration and every layer's files, the rendered context and the CLI's output for each secret
value. A new example with secrets must be added there; this test says so instead of letting it
go unscanned.
"""

from __future__ import annotations

from tests.integration import test_secrets_in_image
from tests.integration.jobs import example_manifest, example_names

SECRET_FIELDS = ("secret_build_env_file", "secret_runtime_env_file")


def test_every_example_with_secrets_is_scanned_for_leaks() -> None:
    with_secrets = sorted(name for name in example_names()
                          if any(example_manifest(name).get(f) for f in SECRET_FIELDS))
    assert with_secrets, "no example uses secrets: the leak scan would check nothing"
    assert with_secrets == [test_secrets_in_image.EXAMPLE], (
        f"examples with secrets: {with_secrets}; test_secrets_in_image.py scans only "
        f"{test_secrets_in_image.EXAMPLE!r} (extend it to every example listed)")

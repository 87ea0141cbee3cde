"""Every example that uses secrets is scanned for leaks: secret-env by test_secrets_in_image.py,
the Racetrack 2.x ones by test_v2_examples.py (its SECRETS_SCANNED), private-git-library by
test_install_needs.py (its GIT_EXAMPLE).

Those modules build the example with its secret files filled in and scan the image's history,
configuration and every layer's files (and, for secret-env, the rendered context and the CLI's
output) for each secret value. A new example with secrets must be added there; this test says so
instead of letting it go unscanned.
"""

from __future__ import annotations

from tests.integration import test_install_needs, test_secrets_in_image, test_v2_examples
from tests.integration.jobs import example_manifest, example_names, v2_example_names

SECRET_FIELDS = ("secret_build_env_file", "secret_runtime_env_file")


def test_every_example_with_secrets_is_scanned_for_leaks() -> None:
    with_secrets = sorted(name for name in [*example_names(), *v2_example_names()]
                          if any(example_manifest(name).get(f) for f in SECRET_FIELDS))
    assert with_secrets, "no example uses secrets: the leak scan would check nothing"
    scanned = sorted([test_secrets_in_image.EXAMPLE, *test_v2_examples.SECRETS_SCANNED,
                      test_install_needs.GIT_EXAMPLE])
    assert with_secrets == scanned, (
        f"examples with secrets: {with_secrets}; the leak scans cover {scanned} "
        "(extend test_secrets_in_image.py or test_v2_examples.SECRETS_SCANNED to every example listed)")

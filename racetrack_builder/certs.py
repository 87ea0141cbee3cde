"""CA bundles for networks that intercept TLS (``--ca-cert``).

pip in the builder stages reads the bundle from a file in the build context; that stage never
becomes the image. apt runs in the final stage, where a copied file would stay in a layer, so it gets
the bundle through a build argument written to a file and removed within the same step. A single
environment value is capped by the kernel (128 KiB), and a whole system bundle is larger, so the
build argument carries only the certificates the base image does not already trust: in practice
the one or two that the intercepting proxy signs with.
"""

from __future__ import annotations

import re

from .errors import UsageError

# Below the kernel's MAX_ARG_STRLEN (128 KiB) with room for the rest of the step's environment.
MAX_BUILD_ARG_BYTES = 96 * 1024
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.S)


def pem_certificates(text: str) -> list[str]:
    """The certificates of a PEM bundle, normalised (whitespace inside the base64 removed)."""
    return ["".join(body.split()) for body in _PEM.findall(text)]


def read_bundle(text: str, source: str) -> list[str]:
    certs = pem_certificates(text)
    if not certs:
        raise UsageError(
            f"--ca-cert {source} holds no PEM certificate",
            hint="give a file with -----BEGIN CERTIFICATE----- blocks",
        )
    return certs


def _to_pem(body: str) -> str:
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def extra_certificates(bundle: str, trusted: str | None, source: str) -> str:
    """The certificates of ``bundle`` missing from ``trusted`` (the image's own store), as PEM.

    Raises UsageError when even those do not fit in a build argument.
    """
    known = set(pem_certificates(trusted or ""))
    extra = "".join(_to_pem(c) for c in read_bundle(bundle, source) if c not in known)
    if len(extra.encode()) > MAX_BUILD_ARG_BYTES:
        raise UsageError(
            f"the CA bundle {source} adds {len(extra) // 1024} KiB of certificates the image does not trust, "
            f"more than a build argument can carry ({MAX_BUILD_ARG_BYTES // 1024} KiB) to apt",
            hint="pass only your organisation's CA certificate(s) with --ca-cert",
        )
    return extra

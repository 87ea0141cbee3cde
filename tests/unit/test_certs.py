"""Only the certificates an image lacks travel to apt, and they must fit in a build argument."""

from __future__ import annotations

import base64

import pytest

from racetrack_builder.certs import MAX_BUILD_ARG_BYTES, extra_certificates, pem_certificates
from racetrack_builder.errors import UsageError


def _pem(seed: int, size: int = 600) -> str:
    body = base64.b64encode(bytes([seed % 256]) * size).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def test_known_certificates_are_left_out_whatever_their_line_wrapping() -> None:
    system = _pem(1) + _pem(2)
    rewrapped = _pem(2).replace("\n", "\r\n")
    bundle = "# comment\n" + _pem(1) + rewrapped + _pem(3)
    extra = extra_certificates(bundle, system, "ca.pem")
    assert pem_certificates(extra) == pem_certificates(_pem(3))


def test_without_an_image_store_every_certificate_goes() -> None:
    assert len(pem_certificates(extra_certificates(_pem(1) + _pem(2), None, "ca.pem"))) == 2


def test_a_file_without_certificates_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no PEM certificate"):
        extra_certificates("not a cert", None, "ca.pem")


def test_too_many_unknown_certificates_name_the_fix() -> None:
    bundle = "".join(_pem(i, 3000) for i in range(60))
    assert len(bundle) > MAX_BUILD_ARG_BYTES
    with pytest.raises(UsageError, match="only your organisation's CA"):
        extra_certificates(bundle, None, "big.pem")

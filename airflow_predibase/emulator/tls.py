"""A throwaway self-signed certificate, to serve the emulator over HTTPS.

    cert, key = self_signed_cert(tmp_path)
    # predibase-emulator --ssl-certfile cert --ssl-keyfile key; clients: SSL_CERT_FILE=cert

Clients trust it the way a user trusts a private CA: SSL_CERT_FILE names it, and httpx's
default SSL context loads it. Needs the `cryptography` package (Airflow installs it).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path


def self_signed_cert(directory: Path, days: float = 1.0) -> tuple[Path, Path]:
    """(certificate, key) PEM files in `directory`, for 127.0.0.1 and localhost, valid for
    `days`. The certificate is its own CA: name it in SSL_CERT_FILE to trust it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Predibase emulator (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # Its own issuer, so it is the trust anchor SSL_CERT_FILE names.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file

"""The smoke test checks TLS like any client: against a local HTTPS server whose certificate
names another host, it fails at once with a message that says so; with a certificate for the
name it calls, the same server passes. The CA is generated here and trusted through
SSL_CERT_FILE, as an adopter's private CA would be.
"""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ml.deploy.smoke import Expected, smoke_serve
from ml.errors import SmokeTestError

EXPECTED = Expected("credit-risk", 3, "a" * 40)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(tmp: Path, host: str) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for `host`, signed by a new CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("smoke test CA"))
        .issuer_name(_name("smoke test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (tmp / f"ca-{host}.pem", tmp / f"{host}.pem", tmp / f"{host}.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class _Serve(http.server.BaseHTTPRequestHandler):
    """A serve API that runs the expected release."""

    def do_GET(self) -> None:
        bodies = {
            "/ready": {"status": "ready"},
            "/metadata": {
                "model": {"name": EXPECTED.model, "version": EXPECTED.version},
                "deployment": {"git_commit": EXPECTED.git_sha},
            },
        }
        body = json.dumps(bodies.get(self.path, {})).encode()
        self.send_response(200 if self.path in bodies else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(cert: Path, key: Path) -> tuple[http.server.HTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def test_a_certificate_for_another_host_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API whose certificate names its load balancer, not the name the smoke test calls
    ca, cert, key = _certificates(tmp_path, "credit-risk-api-123.eu-west-1.elb.amazonaws.com")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    server, port = _serve(cert, key)
    try:
        # When the smoke test calls https://localhost
        with pytest.raises(SmokeTestError) as failed:
            smoke_serve(f"https://localhost:{port}", EXPECTED, timeout=30, poll_interval=0.1)
    finally:
        server.shutdown()

    # Then it fails at once (no retries until the deadline) and says what is wrong and the fix
    message = str(failed.value)
    assert "TLS certificate check failed" in message
    assert "Hostname mismatch" in message
    assert "DNS name its certificate names" in message
    assert "https://api.<environment>.<domain>" in message


def test_a_certificate_for_the_name_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = _certificates(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    server, port = _serve(cert, key)
    try:
        smoke_serve(f"https://localhost:{port}", EXPECTED, timeout=30, poll_interval=0.1)
    finally:
        server.shutdown()


def test_an_untrusted_ca_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cert, key = _certificates(tmp_path, "localhost")
    (tmp_path / "other").mkdir()
    other_ca, _, _ = _certificates(tmp_path / "other", "unrelated.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    server, port = _serve(cert, key)
    try:
        with pytest.raises(SmokeTestError, match="TLS certificate check failed"):
            smoke_serve(f"https://localhost:{port}", EXPECTED, timeout=30, poll_interval=0.1)
    finally:
        server.shutdown()

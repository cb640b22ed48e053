"""Throwaway certificates for the TLS tests, made with the openssl CLI at test time: a CA, a
server certificate for 127.0.0.1 and localhost, one for another host name, a client certificate
(also as one file holding certificate and key, as MLFLOW_TRACKING_CLIENT_CERT_PATH takes it), and
an unrelated CA that signed none of them."""
from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass
class Certificates:
    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def server_context(self, cert: str = "server", client_ca: str | None = None) -> ssl.SSLContext:
        """A server-side context with `<cert>.pem`; with client_ca, client certificates signed by
        it are required."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.path(f"{cert}.pem"), self.path(f"{cert}.key"))
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.path(client_ca))
        return context

    def client_context(self, ca: str = "ca.pem", client: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.path(ca))
        if client:
            context.load_cert_chain(self.path(f"{client}.pem"), self.path(f"{client}.key"))
        return context


def make_certificates(directory: Path | str) -> Certificates:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", *_EC, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
            "-subj", f"/CN=otlp-mlflow-proxy test {ca}")
    for name, extension in (
            ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            ("wrong-host", "subjectAltName=DNS:wrong.example"),
            ("client", "extendedKeyUsage=clientAuth")):
        run("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(extension + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    (directory / "client-with-key.pem").write_bytes(
        (directory / "client.pem").read_bytes() + (directory / "client.key").read_bytes())
    return Certificates(directory)

"""Throwaway certificates for the TLS test server: a CA made for one test run and a server certificate it
signs for 127.0.0.1 and localhost, made with the openssl command (the `cryptography` package is not among
our dependencies). Clients trust the CA the standard way (SSL_CERT_FILE, which the SDK's httpx2 honours),
so no test needs a switch that turns verification off."""

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ServerCertificates:
    ca_file: Path  # what a client must trust
    cert_file: Path  # the server's certificate, signed by the CA
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path, *, ca_name: str = "Retort test CA") -> ServerCertificates:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the TLS tests need the openssl command (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    alt = ",".join(f"IP:{n}" if n[0].isdigit() else f"DNS:{n}" for n in SERVER_NAMES)
    ext.write_text(f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")

    def run(*args):
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True, timeout=60)

    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *new_key, "-keyout", ca_key, "-out", ca_cert, "-days", "2", "-subj", f"/CN={ca_name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *new_key, "-keyout", key, "-out", csr, "-subj", f"/CN={SERVER_NAMES[0]}")
    run("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
        "-days", "2", "-extfile", ext)  # fmt: skip
    return ServerCertificates(ca_cert, cert, key)

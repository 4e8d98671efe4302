"""Test certificates made with openssl: a CA, and a server and a client certificate it signs (for 127.0.0.1 and
localhost). Imported by path like gwproc (tests/conftest.py puts this directory on ``sys.path``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path, prefix: str = "") -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    p = prefix
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={p}test-ca",
            "-keyout", f"{p}ca.key", "-out", f"{p}ca.pem", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={p}{name}", "-keyout", f"{p}{name}.key",
                "-out", f"{p}{name}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{p}{name}.csr", "-CA", f"{p}ca.pem", "-CAkey", f"{p}ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{p}{name}.pem", cwd=directory)
    return {name: directory / f"{p}{name}" for name in ("ca.pem", "server.pem", "server.key", "client.pem",
                                                          "client.key")}

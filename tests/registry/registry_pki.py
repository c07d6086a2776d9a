"""Test PKI made with the openssl command: a CA, a server certificate for the
loopback address, and an RSA key whose certificate the registry trusts for tokens."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> bytes:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.decode()}")
    return done.stdout


@dataclass(frozen=True)
class Pki:
    """Paths of the generated files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: verification must fail with it


def make_pki(root: Path) -> Pki:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it (EC keys: fast)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                 "-subj", f"/CN=fastmatch test {name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=root)
    (root / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        "basicConstraints=CA:FALSE\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
             cwd=root)
    return Pki(root / "ca.crt", root / "server.crt", root / "server.key", root / "other-ca.crt")


def _der_integers(der: bytes) -> list[int]:
    """The INTEGERs of a DER SEQUENCE of INTEGERs (PKCS#1 RSAPrivateKey)."""

    def length(pos: int) -> tuple[int, int]:
        first = der[pos]
        if first < 0x80:
            return first, pos + 1
        n = first & 0x7F
        return int.from_bytes(der[pos + 1 : pos + 1 + n], "big"), pos + 1 + n

    assert der[0] == 0x30
    _, pos = length(1)
    values = []
    while pos < len(der):
        assert der[pos] == 0x02
        size, pos = length(pos + 1)
        values.append(int.from_bytes(der[pos : pos + size], "big"))
        pos += size
    return values


_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


@dataclass(frozen=True)
class TokenKey:
    """An RSA key to sign registry tokens (RS256) with, and its certificate."""

    cert: Path
    kid: str
    n: int
    d: int

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256."""
        k = (self.n.bit_length() + 7) // 8
        t = _SHA256_PREFIX + hashlib.sha256(data).digest()
        em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        return pow(int.from_bytes(em, "big"), self.d, self.n).to_bytes(k, "big")


def libtrust_kid(spki_der: bytes) -> str:
    """The key id the registry derives from a trusted certificate's public key."""
    s = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i : i + 4] for i in range(0, len(s), 4))


def make_token_key(root: Path) -> TokenKey:
    """An RSA key and a self-signed certificate for it (the registry's rootcertbundle)."""
    root.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "token.key",
             "-out", "token.crt", "-days", "2", "-subj", "/CN=fastmatch test token issuer",
             cwd=root)
    der = _openssl("rsa", "-in", "token.key", "-outform", "DER", "-traditional", cwd=root)
    _, n, _e, d, *_ = _der_integers(der)
    spki = _openssl("rsa", "-in", "token.key", "-pubout", "-outform", "DER", cwd=root)
    return TokenKey(root / "token.crt", libtrust_kid(spki), n, d)

"""Who may connect: SCRAM-SHA-256 (what psql, libpq, psycopg and pgjdbc speak), with passwords kept only as
SCRAM verifiers (PBKDF2-HMAC-SHA256 with a random salt, PostgreSQL's own ``pg_authid`` format).

A users file has one line per user: ``name role verifier`` where role is ``reader`` or ``writer``; ``#`` starts a
comment. ``warehouse-ml serve-user FILE NAME --role writer`` adds or replaces a line without ever writing the
password.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

ITERATIONS = 4096
ROLES = ("reader", "writer")


@dataclass(frozen=True)
class Verifier:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __str__(self) -> str:
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        return f"SCRAM-SHA-256${self.iterations}:{b64(self.salt)}${b64(self.stored_key)}:{b64(self.server_key)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        head, _, keys = text.partition("$")
        if head != "SCRAM-SHA-256":
            raise ValueError("a verifier starts with SCRAM-SHA-256$")
        iter_salt, _, keys = keys.partition("$")
        iterations, _, salt = iter_salt.partition(":")
        stored, _, server = keys.partition(":")
        d = base64.b64decode
        return cls(d(salt), int(iterations), d(stored), d(server))


def make_verifier(password: str, iterations: int = ITERATIONS) -> Verifier:
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return Verifier(salt, iterations, hashlib.sha256(client_key).digest(),
                    hmac.new(salted, b"Server Key", "sha256").digest())


@dataclass(frozen=True)
class User:
    name: str
    role: str
    verifier: Verifier


def read_users(path: str) -> dict[str, User]:
    """The users file as {name: User}; a malformed line is an error naming its line number."""
    users = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                name, role, verifier = parts
                if role not in ROLES:
                    raise ValueError(f"role must be one of {ROLES}")
                users[name] = User(name, role, Verifier.parse(verifier))
            except ValueError as e:
                raise ValueError(f"{path}, line {number}: expected 'name reader|writer SCRAM-SHA-256$...' ({e}). "
                                 "Write lines with `warehouse-ml serve-user FILE NAME --role reader`") from None
    if not users:
        raise ValueError(f"{path} lists no users. Add one with `warehouse-ml serve-user {path} NAME --role reader`")
    return users


def write_user(path: str, name: str, role: str, password: str) -> None:
    """Add or replace one user's line; the file is created readable by its owner only."""
    if role not in ROLES or not name or any(c.isspace() for c in name) or not password:
        raise ValueError(f"a user needs a name without spaces, a role in {ROLES} and a non-empty password")
    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l.split("#", 1)[0].split()[:1] != [name]]
    lines.append(f"{name} {role} {make_verifier(password)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


class ScramExchange:
    """The server side of one SCRAM-SHA-256 exchange (RFC 5802/7677, without channel binding)."""

    def __init__(self, verifier: Verifier | None):
        # an unknown user gets a made-up verifier, so the exchange looks the same and fails at the end
        self.verifier = verifier or make_verifier(secrets.token_hex(16))
        self.known = verifier is not None
        self.nonce = ""
        self.client_first_bare = ""
        self.server_first = ""

    def first(self, client_first: str) -> str:
        gs2, _, bare = client_first.partition(",")
        _authzid, _, bare = bare.partition(",")
        if gs2 not in ("n", "y"):
            raise ValueError("channel binding is not offered by this server; connect with channel_binding=disable "
                             "or prefer")
        self.gs2_header = f"{gs2},{_authzid},"
        attrs = dict(a.split("=", 1) for a in bare.split(",") if "=" in a)
        self.client_first_bare = bare
        self.nonce = attrs["r"] + base64.b64encode(secrets.token_bytes(18)).decode()
        v = self.verifier
        self.server_first = f"r={self.nonce},s={base64.b64encode(v.salt).decode()},i={v.iterations}"
        return self.server_first

    def final(self, client_final: str) -> str | None:
        """The server-final message, or None when the proof is wrong."""
        without_proof, _, proof = client_final.rpartition(",p=")
        attrs = dict(a.split("=", 1) for a in without_proof.split(",") if "=" in a)
        if attrs.get("r") != self.nonce or attrs.get("c") != base64.b64encode(self.gs2_header.encode()).decode():
            return None
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(self.verifier.stored_key, auth_message, "sha256").digest()
        try:
            client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        except ValueError:
            return None
        if not self.known or not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.verifier.stored_key):
            return None
        return "v=" + base64.b64encode(hmac.new(self.verifier.server_key, auth_message, "sha256").digest()).decode()

"""Secrets at rest: engine admin tokens are stored encrypted with Fernet (AES-128-CBC with an
HMAC-SHA256 tag, so a changed ciphertext fails to decrypt instead of decrypting to garbage).

The keys come from ``CP_SECRET_KEY`` (comma-separated) or from a key file (one key per line,
default ``<data_dir>/secret.key``), never from the database: a copy of the store alone (a
backup, a stolen file) does not reveal the tokens. The first key encrypts; every key listed
decrypts, which is what makes rotation safe to interrupt (see :func:`rotate_keys`).

The key file is created ``0600`` with a fresh key the first time a secret is encrypted, so
nothing is written for a store that never holds one. A process re-reads the key file before
each encryption and when a secret does not decrypt, so a rotation by ``cplane db rotate-key``
takes effect in running servers without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet

from controlplane.domain import SecretKeyError
from controlplane.settings import Settings
from controlplane.store.files import write_private


def new_key() -> str:
    return Fernet.generate_key().decode()


def _parse_keys(text: str, *, where: str) -> list[str]:
    keys = [k.strip() for k in text.replace(",", "\n").splitlines() if k.strip()]
    for key in keys:
        try:
            Fernet(key)
        except ValueError as exc:
            raise SecretKeyError(
                f"{where} holds a value that is not a Fernet key (32 url-safe base64 bytes)"
            ) from exc
    return keys


class SecretBox:
    """Encrypts and decrypts short secrets with the configured keys. Thread-safe."""

    def __init__(self, *, env_keys: str | None, key_file: Path) -> None:
        self.env_keys = env_keys
        self.key_file = key_file
        self._lock = threading.Lock()
        self._keys: list[str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        env = settings.secret_key.get_secret_value() if settings.secret_key else None
        return cls(env_keys=env, key_file=settings.resolved_secret_key_file)

    @property
    def source(self) -> str:
        """Where the keys come from, fit for a message (never the keys themselves)."""
        return "CP_SECRET_KEY" if self.env_keys else f"key file {self.key_file}"

    def keys(self, *, create: bool = False) -> list[str]:
        """The keys, primary first; ``create`` writes a key file with a new key if none."""
        with self._lock:
            if self._keys is None:
                self._keys = self._load(create=create)
            return list(self._keys)

    def _load(self, *, create: bool) -> list[str]:
        if self.env_keys:
            keys = _parse_keys(self.env_keys, where="CP_SECRET_KEY")
        elif self.key_file.exists():
            keys = _parse_keys(self.key_file.read_text(), where=str(self.key_file))
        elif create:
            keys = [new_key()]
            write_private(self.key_file, keys[0] + "\n")
        else:
            keys = []
        if not keys and (create or self.env_keys):
            raise SecretKeyError(f"{self.source} holds no key")
        return keys

    def _fernet(self, *, create: bool = False) -> MultiFernet:
        keys = self.keys(create=create)
        if not keys:
            raise SecretKeyError(
                f"stored secrets cannot be decrypted: {self.source} does not exist "
                "(restore it, or set CP_SECRET_KEY)"
            )
        return MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, plain: str) -> str:
        if not self.env_keys:
            # Always under the key file's current primary: another process may have rotated
            # it, and a secret under a retired key would not decrypt after the next restart.
            with self._lock:
                self._keys = None
        return self._fernet(create=True).encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet().decrypt(token.encode()).decode()
        except InvalidToken:
            if self.env_keys:
                raise self._undecryptable() from None
        # Another process may have rotated the key file since it was read: read it again.
        with self._lock:
            self._keys = None
        try:
            return self._fernet().decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise self._undecryptable() from exc

    def _undecryptable(self) -> SecretKeyError:
        return SecretKeyError(
            f"a stored secret does not decrypt with the keys in {self.source} "
            "(wrong key, or the ciphertext was altered)"
        )

    def _replace_keys(self, keys: list[str]) -> None:
        """Key file mode only: write ``keys`` atomically and use them from now on."""
        write_private(self.key_file, "\n".join(keys) + "\n")
        with self._lock:
            self._keys = list(keys)


def rotate_keys(box: SecretBox, reencrypt: Callable[[MultiFernet], int]) -> int:
    """Re-encrypt every stored secret under a new primary key; returns how many.

    ``reencrypt`` rewrites all secrets in one database transaction with the given
    MultiFernet's ``rotate`` and commits it (all or none). Key file mode, in three steps,
    each leaving every secret decryptable should the process die after it:

    1. the key file becomes ``[new, old...]`` (atomic replace): old secrets still decrypt;
    2. the transaction re-encrypts every secret under ``new``;
    3. the key file becomes ``[new]``.

    With ``CP_SECRET_KEY`` the operator supplies the new key first in the list
    (``new,old``); the secrets are re-encrypted under it and the old keys may then be removed.
    """
    old = box.keys()
    if box.env_keys:
        if len(old) < 2:
            raise SecretKeyError(
                "CP_SECRET_KEY holds one key: put a new key first (CP_SECRET_KEY=NEW,OLD), "
                "run rotate-key, then drop OLD"
            )
        return reencrypt(MultiFernet([Fernet(k) for k in old]))
    fresh = new_key()
    staged = [fresh, *old]
    box._replace_keys(staged)
    count = reencrypt(MultiFernet([Fernet(k) for k in staged]))
    box._replace_keys([fresh])
    return count


__all__ = ["InvalidToken", "SecretBox", "new_key", "rotate_keys"]

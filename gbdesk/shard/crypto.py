"""Encryption of the connection strings stored in ``shard_config.connection_string``.

The chapter stores "encrypted connection strings". gbdesk writes them as
``enc:v1:<Fernet token>`` (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``). The key is
generated on first use and kept with :mod:`gbdesk.secrets` under ``shard-connection-key``: the
OS keyring, or the 0600 secrets file where no keyring exists. A value without the ``enc:v1:``
prefix (a row written by hand, as in the chapter's examples) is read as plain text.
"""

from __future__ import annotations

from gbdesk.paths import AppPaths
from gbdesk.secrets import get_secret, set_secret
from gbdesk.shard.errors import ShardError

PREFIX = "enc:v1:"
KEY_SECRET = "shard-connection-key"


def _fernet(*, create: bool, paths: AppPaths | None):
    from cryptography.fernet import Fernet

    key = get_secret(KEY_SECRET, paths=paths)
    if key is None:
        if not create:
            raise ShardError(
                "the key that encrypts stored connection strings is missing from the keyring "
                "and the secrets file",
                fix=f"restore the secret {KEY_SECRET!r} from the machine that registered the "
                "shard, or run `gbdesk shard register` again to store a new encrypted string",
            )
        key = Fernet.generate_key().decode("ascii")
        set_secret(KEY_SECRET, key, paths=paths)
    return Fernet(key.encode("ascii"))


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def encrypt(plain: str, *, paths: AppPaths | None = None) -> str:
    """``enc:v1:<token>``, creating the key on first use.

    Raises:
        OSError: the key cannot be stored.
    """
    token = _fernet(create=True, paths=paths).encrypt(plain.encode("utf-8"))
    return PREFIX + token.decode("ascii")


def decrypt(stored: str, *, paths: AppPaths | None = None) -> str:
    """The plain connection string (values without the prefix are returned unchanged).

    Raises:
        ShardError: the key is missing or is not the key the value was encrypted with.
    """
    if not is_encrypted(stored):
        return stored
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(create=False, paths=paths).decrypt(stored[len(PREFIX) :]).decode("utf-8")
    except InvalidToken:
        raise ShardError(
            "a stored connection string was encrypted with another key",
            fix=f"copy the secret {KEY_SECRET!r} from the machine that registered the shard, "
            "or register again from this machine",
        ) from None

"""handler.stores.keys: secrets, their key ids and stored hashes (no table)."""

from __future__ import annotations

import hashlib

from handler.stores.keys import SECRET_PATTERN, hash_secret, key_id_of, new_secret


def test_a_new_secret_names_its_key_and_has_256_random_bits() -> None:
    key_id, secret = new_secret()
    assert SECRET_PATTERN.fullmatch(secret)
    assert secret.startswith(f"sk-ts-{key_id}-") and len(secret) == 6 + 16 + 1 + 43
    assert key_id_of(secret) == key_id
    assert len({new_secret()[1] for _ in range(100)}) == 100


def test_malformed_secrets_have_no_key_id() -> None:
    _, secret = new_secret()
    for bad in (secret + "x", secret[:-1], "sk-" + secret[6:], "", secret.upper(), " " + secret):
        assert key_id_of(bad) is None, bad


def test_only_a_sha256_is_stored() -> None:
    assert (
        hash_secret("sk-ts-0123456789abcdef-" + "A" * 43)
        == hashlib.sha256(b"sk-ts-0123456789abcdef-" + b"A" * 43).hexdigest()
    )

"""Envelope encryption and key-encryption keys: the recipes the rest of flowcred uses.

This package is the only part of flowcred that may import ``cryptography.hazmat``, and within it
only the private ``_aead`` and ``_kdf`` modules do; ``tests/test_hazmat_fence.py`` enforces both.

```python
source = key_source_from_settings(settings)
ring = build_ring(source.load(), registered, primary_version, source_description=source.description)
aad = secret_aad(tenant, credential_id, version)
sealed = seal(b"s3cret", ring=ring, aad=aad)
open_sealed(sealed.ciphertext, sealed.wrapped_key, ring=ring, aad=aad)  # b"s3cret"
```
"""

from flowcred.crypto.chain_mac import GENESIS, ChainMac, audit_mac, checkpoint_mac
from flowcred.crypto.envelope import (
    FORMAT_VERSION,
    SealedSecret,
    open_sealed,
    rewrap_key,
    seal,
    secret_aad,
    state_aad,
    token_aad,
)
from flowcred.crypto.kek_ring import Kek, KekRing, build_ring, fingerprint, unregistered_keys
from flowcred.crypto.key_sources import (
    EnvKeySource,
    KeyFileSource,
    KeySource,
    generate_key,
    key_source_from_settings,
)

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "ChainMac",
    "EnvKeySource",
    "Kek",
    "KekRing",
    "KeyFileSource",
    "KeySource",
    "SealedSecret",
    "audit_mac",
    "build_ring",
    "checkpoint_mac",
    "fingerprint",
    "generate_key",
    "key_source_from_settings",
    "open_sealed",
    "rewrap_key",
    "seal",
    "secret_aad",
    "state_aad",
    "token_aad",
    "unregistered_keys",
]

"""Sealing interaction texts: which data key, and the field cipher's recipe.

A linked interaction is sealed under its citizen's interactions key (owner = citizen id, slot "I",
version 1, in the key store beside their profile key); erasing the citizen destroys it with their
profile key (vault.profiles.service), so every text, contact detail and precise location they ever
gave becomes unreadable while the rows and the anonymous statistics stay. An anonymous interaction
(no citizen proved who they are) gets a key of its own (owner = interaction id, slot "I").

Each value is sealed with associated data naming the interaction and the value
(``<interaction id>/<name>``), so a ciphertext moved to another interaction or value does not open.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.exc import IntegrityError

from keys.dekstore import DekRef, DekStore
from keys.errors import KeyDestroyed, KeyLayerError
from vault.errors import CannotDecrypt
from vault.fieldcipher import SLOT_INTERACTION, FieldCipher, pack_record, unpack_record

VERSION = 1


def owner_of(interaction_id: str, citizen_id: str | None) -> uuid.UUID:
    """Whose key seals an interaction: its citizen's, or its own when anonymous."""
    return uuid.UUID(citizen_id or interaction_id)


class Sealer:
    """Seals and opens the values of interactions."""

    def __init__(self, dekstore: DekStore) -> None:
        self.dekstore = dekstore

    def key(self, owner: uuid.UUID) -> bytes | None:
        """The owner's interactions key, or None when it was destroyed (erasure) or never made."""
        try:
            return self.dekstore.get(DekRef(owner, SLOT_INTERACTION, VERSION))
        except KeyDestroyed:
            return None
        except KeyLayerError:
            raise CannotDecrypt("the interactions key cannot be unwrapped") from None

    def key_or_create(self, owner: uuid.UUID) -> bytes:
        """The owner's key, made on first use (committed to the key store before the data)."""
        found = self.key(owner)
        if found is not None:
            return found
        ref = DekRef(owner, SLOT_INTERACTION, VERSION)
        try:
            return self.dekstore.create([ref])[ref]
        except IntegrityError:  # made meanwhile by a concurrent first interaction of the same citizen
            again = self.key(owner)
            if again is None:
                raise CannotDecrypt("the interactions key cannot be created") from None
            return again

    def destroy(self, owner: uuid.UUID) -> None:
        """Drop a key made for an interaction that was not stored after all."""
        self.dekstore.destroy(owner, SLOT_INTERACTION)

    @staticmethod
    def seal(owner: uuid.UUID, key: bytes, scope: str, values: Mapping[str, str]) -> bytes:
        """One record of ``values`` (name -> text), each bound to ``scope``/name."""
        cipher = FieldCipher(owner, key, SLOT_INTERACTION, VERSION)
        return pack_record({n: cipher.encrypt(f"{scope}/{n}", v.encode("utf-8")) for n, v in values.items()})

    @staticmethod
    def open(owner: uuid.UUID, key: bytes | None, scope: str, record: bytes) -> dict[str, str] | None:
        """The values of a record; None when the key is gone (the citizen was erased)."""
        if key is None:
            return None
        cipher = FieldCipher(owner, key, SLOT_INTERACTION, VERSION)
        try:
            return {n: cipher.decrypt(f"{scope}/{n}", b).decode("utf-8") for n, b in unpack_record(record).items()}
        except (KeyLayerError, UnicodeDecodeError):
            raise CannotDecrypt("an interaction value does not decrypt") from None

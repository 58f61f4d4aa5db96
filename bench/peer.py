"""The do-it-yourself peer: one SQLAlchemy table of sqlalchemy-utils StringEncryptedType columns
(AES-GCM engine, one application key for everything), ORM inserts in batches of 1,000.

It has none of the vault's properties (no per-citizen key, no associated data, no blind index, no
rotation, no erasure): it is the baseline a team gets by reaching for the obvious library.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy_utils import StringEncryptedType
from sqlalchemy_utils.types.encrypted.encrypted_type import AesGcmEngine

from keys.sqlstore import make_engine

APP_KEY = os.urandom(32).hex()


def _enc() -> Any:
    return StringEncryptedType(String, APP_KEY, AesGcmEngine)


class Base(DeclarativeBase):
    pass


class PeerProfile(Base):
    __tablename__ = "peer_profiles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    given_name: Mapped[str] = mapped_column(_enc())
    family_name: Mapped[str] = mapped_column(_enc())
    date_of_birth: Mapped[str] = mapped_column(_enc())
    national_id: Mapped[str] = mapped_column(_enc())
    email: Mapped[str] = mapped_column(_enc())
    phone: Mapped[str] = mapped_column(_enc())
    address: Mapped[str] = mapped_column(_enc())
    income: Mapped[str] = mapped_column(_enc())
    health_notes: Mapped[str] = mapped_column(_enc())


def import_profiles(url: str, rows: Iterable[dict[str, Any]], batch: int = 1000) -> int:
    """Insert every row through the ORM, committing every ``batch``; returns the count."""
    # Same SQLite pragmas (WAL, cache) as the vault: a fair fight.
    engine = make_engine(url) if url.startswith("sqlite") else create_engine(url)
    Base.metadata.create_all(engine)
    count = 0
    with Session(engine) as session:
        pending = []
        for row in rows:
            pending.append(PeerProfile(**{k: str(v) for k, v in row.items()}))
            if len(pending) >= batch:
                session.add_all(pending)
                session.commit()
                count += len(pending)
                pending = []
        if pending:
            session.add_all(pending)
            session.commit()
            count += len(pending)
    engine.dispose()
    return count

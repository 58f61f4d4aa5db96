"""Representation relations: who may act for whom, of which kind, for which actions, when.

No personal value rests here: ids, kind, scope and dates only. A parent relation stores no end
date: it ends at the child's majority, derived at check time from the child's date of birth
(decrypted in an audited read), so a corrected date of birth takes effect at once.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table

from vault.models import metadata

representations = Table(
    "representations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("represented_id", String(36), nullable=False),  # the citizen acted for
    Column("representative_type", String(16), nullable=False),  # citizen | organisation
    Column("representative_id", String(256), nullable=False),  # a citizen's id, or an agency's code
    Column("kind", String(16), nullable=False),  # parent | guardian | mandate
    Column("scope", String(100), nullable=False),  # sorted, comma-separated actions: consents,export,requests,view
    Column("valid_from", String(32), nullable=False),
    Column("valid_until", String(32), nullable=True),  # None: open-ended (a parent's: the child's majority)
    Column("status", String(16), nullable=False),  # active | ended
    Column("recorded_by", String(256), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("ended_by", String(256), nullable=True),
    Column("ended_at", String(32), nullable=True),
    Index("ix_representations_represented", "represented_id"),
    Index("ix_representations_representative", "representative_id"),
)

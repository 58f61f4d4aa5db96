"""Anonymous statistics of interactions: the only table insights read (issue 15).

One row per interaction, written by the interaction service in the same transaction as the
interaction itself and updated on each status change and rating. It holds no citizen id, no
actor, no text and no location finer than the coarse area kept in clear, so erasing a citizen
leaves the statistics they contributed intact while nothing here points back to them. Times are
UTC epoch seconds, so durations are plain integer arithmetic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, SmallInteger, String, Table

from vault.models import metadata

KINDS = ("request", "complaint", "enquiry", "feedback")
CHANNELS = ("web", "phone", "counter", "email", "app")
STATUSES = ("open", "acknowledged", "in_progress", "resolved", "closed")

interaction_facts = Table(
    "interaction_facts",
    metadata,
    Column("interaction_id", String(36), primary_key=True),
    Column("agency", String(64), nullable=False),
    Column("service_code", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # one of KINDS
    Column("channel", String(16), nullable=False),  # one of CHANNELS
    Column("area", String(32), nullable=True),  # coarse area code (policies/), never finer
    Column("status", String(16), nullable=False),  # one of STATUSES
    Column("created_s", BigInteger, nullable=False),
    Column("acknowledged_s", BigInteger, nullable=True),
    Column("resolved_s", BigInteger, nullable=True),
    Column("closed_s", BigInteger, nullable=True),
    # The service levels in force at intake (seconds after creation), copied from the catalogue so
    # a later change of target does not rewrite history.
    Column("ack_target_s", Integer, nullable=True),
    Column("resolve_target_s", Integer, nullable=True),
    Column("rating", SmallInteger, nullable=True),  # 1..5, only after resolution
    Index("ix_interaction_facts_created", "created_s"),
    Index("ix_interaction_facts_agency", "agency", "created_s"),
    Index("ix_interaction_facts_service", "service_code", "created_s"),
)

"""Insights' own tables: daily and monthly rollups of interaction_facts, and the privacy ledger.

The rollups make a query over a million interactions read thousands of rows rather than a million
(docs/insights.md, "Speed"); the ledger is the per-analyst privacy budget, kept in the database so
that it holds across processes and restarts. Identical to migration v0014.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from vault.models import metadata

# Upper edges (seconds) of the duration buckets; a last bucket holds everything from 30 days on.
EDGES = (300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800, 1209600, 2592000)
BUCKETS = len(EDGES) + 1
ACK = tuple(f"a{i}" for i in range(BUCKETS))
RES = tuple(f"r{i}" for i in range(BUCKETS))
# Additive measures of one rollup cell, summed by every query.
MEASURES = ("n", "ack_ok", "ack_late", "res_ok", "res_late", "rated", "rating_sum", *ACK, *RES)
DIMENSIONS = ("agency", "service_code", "channel", "kind", "area")


def _rollup(name: str, period: str) -> Table:
    return Table(
        name,
        metadata,
        Column(period, Integer, primary_key=True),  # days (or months) since 1970-01 (UTC)
        Column("agency", String(64), primary_key=True),
        Column("service_code", String(64), primary_key=True),
        Column("channel", String(16), primary_key=True),
        Column("kind", String(16), primary_key=True),
        Column("area", String(32), primary_key=True),  # "-" where the fact has none
        *(Column(m, BigInteger, nullable=False) for m in MEASURES),
    )


insight_daily = _rollup("insight_daily", "day")
insight_monthly = _rollup("insight_monthly", "month")

# One row per analyst and budget period: how much epsilon they spent. Spending is one conditional
# UPDATE (spent + cost <= limit), atomic on SQLite and PostgreSQL alike.
insight_budget = Table(
    "insight_budget",
    metadata,
    Column("subject", String(256), primary_key=True),
    Column("period_start", BigInteger, primary_key=True),  # epoch seconds of the period's start
    Column("spent", Float, nullable=False),
)

# Every released answer, with what it cost: re-reading a release spends nothing (post-processing of
# a differentially private output is free), and the per-query epsilon is on record.
insight_releases = Table(
    "insight_releases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(256), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("created_s", BigInteger, nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("query", Text, nullable=False),  # the query's parameters (JSON)
    Column("result", Text, nullable=False),  # the released, noisy rows (JSON)
    Index("ix_insight_releases_subject", "subject", "created_s"),
)

# When the rollups were last rebuilt (one row, id 1); a refresh is claimed by moving it forward.
insight_refresh = Table(
    "insight_refresh",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("refreshed_s", BigInteger, nullable=False),
)

"""The import workers' half: validate, screen, encrypt and encode one batch into ready rows.

Runs in forked worker processes (or inline). A worker inherits, by fork, the catalogue, the
blind-index keys and, when the KEK provider keeps its KEK in process memory, the provider itself
(the PII detector is loaded by the first text of the worker's that needs it); it never touches a
database. It hands the parent one :class:`PreparedBatch` of flat lists of driver parameters,
already sorted in primary-key order, so the parent (the single writer) only runs executemany and
appends the audit events. With a provider whose KEK lives in an HSM the worker hands over plaintext
data keys instead (over a local pipe, memory only), and the parent wraps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.engine import Dialect

from keys import aead
from keys.dekimport import DekRows
from keys.rowcodec import RowCodec
from vault.catalogue import Catalogue
from vault.errors import ValidationFailed
from vault.fieldcipher import SLOT_PROFILE
from vault.ids import ImportIds
from vault.import_source import LineError, RawItem, parse_item
from vault.models import blind_index, citizens
from vault.pii.intake import Intake, own_values
from vault.pii.tables import pii_findings
from vault.profiles import records
from vault.profiles.records import Indexer

DUPLICATE = "duplicate of an earlier line in this file"


class ImportRows:
    """Parameter builders of the data-store tables an import writes (one set per dialect)."""

    def __init__(self, dialect: Dialect) -> None:
        self.citizens = RowCodec(citizens, dialect)
        self.index = RowCodec(blind_index, dialect)
        self.pii = RowCodec(pii_findings, dialect)
        self.citizen_id: Callable[[Any], Any] = self.citizens.converter("id")
        self.time: Callable[[Any], Any] = self.citizens.converter("created_at")


@dataclass(frozen=True)
class WorkerState:
    """What forked workers inherit: never pickled, never touching a database."""

    catalogue: Catalogue
    indexer: Indexer
    intake: Intake
    unique: frozenset[str]
    rows: ImportRows
    deks: DekRows


class PreparedBatch(NamedTuple):
    """One validated, encrypted batch as driver parameters: flat lists, cheap to send between processes.

    ``lines`` and ``ids`` are the accepted lines and their citizen ids (canonical text, for the
    audit events), in file order. Data keys come either wrapped (``keys``: key-store rows) or, when
    the provider must wrap in the parent, in plaintext (``deks``); the other list is empty.
    """

    lines: list[int]
    ids: list[str]
    citizens: list[Any]  # sorted by id
    blind_index: list[Any]  # sorted by primary key (field, digest, tiebreak)
    unique: list[tuple[str, bytes, int]]  # (unique field, digest, line)
    keys: list[Any]
    deks: list[tuple[uuid.UUID, bytes]]
    pii: list[Any]  # findings of free-text fields: entity types and counts only
    errors: list[LineError]


def prepare(
    state: WorkerState, run: uuid.UUID, batch_no: int, items: Sequence[RawItem], agency: str, now: datetime
) -> PreparedBatch:
    """Validate, screen and encrypt one batch; duplicates of a unique value inside the batch are
    rejected here (the database rejects those registered by earlier batches or other imports)."""
    catalogue, indexer, intake, unique, rows = state.catalogue, state.indexer, state.intake, state.unique, state.rows
    to_id, stamp = rows.citizen_id, rows.time(now)
    status, dek_version = records.NEW_STATUS, records.NEW_DEK_VERSION
    citizen_row, index_row, pii_row = rows.citizens.row, rows.index.row, rows.pii.row
    lines: list[int] = []
    ids: list[str] = []
    citizen_rows: list[Any] = []
    index_rows: list[Any] = []
    unique_keys: list[tuple[str, bytes, int]] = []
    deks: list[tuple[uuid.UUID, bytes]] = []
    pii_rows: list[Any] = []
    errors: list[LineError] = []
    seen: set[tuple[str, bytes]] = set()
    citizen_id = ImportIds(run, batch_no)
    for number, raw in items:
        item = parse_item(number, raw)
        if isinstance(item, LineError):
            errors.append(item)
            continue
        try:
            values = catalogue.validate(item, creating=True)
            # Free text is screened on every write path, imports included (a refusal is a line error).
            values, findings = intake.screen(values, own_values(values))
        except ValidationFailed as exc:
            errors.append(LineError(number, exc.problems))
            continue
        citizen = citizen_id(number)
        dek = aead.new_key()
        entries = indexer.entries(citizen, values)
        mine = [(f, d) for f, d, _ in entries if f in unique]
        dup = next((k for k in mine if k in seen), None)
        if dup is not None:
            errors.append(LineError(number, {dup[0]: DUPLICATE}))
            continue
        seen.update(mine)
        unique_keys.extend((f, d, number) for f, d in mine)
        record, provenance = records.seal(catalogue, citizen, dek, values, agency, now)
        owner = to_id(citizen)
        citizen_rows.append(citizen_row((owner, status, dek_version, record, provenance, stamp, stamp, None)))
        index_rows.extend(index_row((f, d, t, owner)) for f, d, t in entries)
        pii_rows.extend(pii_row((owner, f.field, f.stored(), stamp)) for f in findings.values())
        lines.append(number)
        ids.append(str(citizen))
        deks.append((citizen, dek))
    # Sorted by key, inserts walk each B-tree in order instead of jumping to random pages
    # (blind-index digests are random by construction): measurably faster on SQLite.
    citizen_rows.sort(key=rows.citizens.key("id"))
    index_rows.sort(key=rows.index.key("field", "digest", "tiebreak"))
    if state.deks.in_workers:
        keys = state.deks.wrap(deks, SLOT_PROFILE, dek_version, now)
        deks = []
    else:
        keys = []
    return PreparedBatch(lines, ids, citizen_rows, index_rows, unique_keys, keys, deks, pii_rows, errors)

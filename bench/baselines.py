"""Honest baselines (issue 16): what a competent developer writing their own service would write.
An ``async def`` FastAPI route reading one row by primary key over a connection that lives as long
as the process: one persistent sqlite3 connection per process, or a psycopg async pool per process
on PostgreSQL. The benchmark serves them with uvicorn, the same worker count as the vault."""

from __future__ import annotations

SQLITE_APP = """
import sqlite3
from fastapi import FastAPI
app = FastAPI()
_con = sqlite3.connect("{db}", check_same_thread=False)  # one per process, opened at import
_id = _con.execute("SELECT id FROM citizens ORDER BY id LIMIT 1").fetchone()[0]
@app.get("/bare")
async def bare() -> dict:
    row = _con.execute("SELECT id, record FROM citizens WHERE id = ?", (_id,)).fetchone()
    return {{"id": str(row[0]), "size": len(row[1])}}
"""

PG_APP = """
from contextlib import asynccontextmanager
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
pool = AsyncConnectionPool("{dsn}", min_size={size}, max_size={size}, open=False)
state = {{}}
@asynccontextmanager
async def lifespan(app):
    await pool.open(wait=True)
    async with pool.connection() as conn:
        state["id"] = (await (await conn.execute("SELECT id FROM citizens ORDER BY id LIMIT 1")).fetchone())[0]
    yield
    await pool.close()
app = FastAPI(lifespan=lifespan)
@app.get("/bare")
async def bare() -> dict:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id, record FROM citizens WHERE id = %s", (state["id"],))
        row = await cur.fetchone()
    return {{"id": str(row[0]), "size": len(row[1])}}
"""


def sqlite_app(db: str) -> str:
    """Source of the SQLite baseline app reading ``db``."""
    return SQLITE_APP.format(db=db)


def pg_app(sqlalchemy_url: str, pool_size: int = 8) -> str:
    """Source of the PostgreSQL baseline app (psycopg async pool of ``pool_size`` per process)."""
    dsn = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
    return PG_APP.format(dsn=dsn, size=pool_size)

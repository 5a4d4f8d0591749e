"""Everything a database holds, as text: to prove a secret is stored nowhere, on any backend."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, select


def dump(engine: Engine) -> str:
    """SQLite's own dump; elsewhere every row of every table (what a backup would hold)."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            return "\n".join(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()
    meta = MetaData()
    meta.reflect(engine)
    lines: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            lines.extend(f"{table.name}: {tuple(row)!r}" for row in conn.execute(select(table)))
    return "\n".join(lines)

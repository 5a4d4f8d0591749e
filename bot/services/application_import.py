"""`lontar applications import FILE.csv`: the office's export, checked whole, then written
in one transaction (all rows or none).

The file is UTF-8 (a BOM is fine), comma- or semicolon-separated (spreadsheets in
Indonesian locales save with ';'), with this header in any order:

    nomor_registrasi,layanan,kantor,status,alasan,nik,tanggal_lahir

`layanan` is a service id (content/services/*.toml), `kantor` an office id
(content/offices.toml), `status` a status id (content/applications.toml); `alasan` is
required for perlu-perbaikan and ditolak; `tanggal_lahir` (YYYY-MM-DD) or `nik` is needed:
the citizen is asked for the birth date, or without one for the NIK's last four digits.
A registration number already known is updated, not duplicated.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine

from bot.services.applications import FIELDS, REQUIRED, Applied, apply, check_all
from flows.content import Content

MAX_BYTES = 200 * 1024 * 1024
PROGRESS_EVERY = 5000


@dataclass
class Report:
    rows: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    applied: Applied | None = None


def read(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[tuple[int, str, str]]]:
    """Rows keyed by their line number in the file, or the problems that stop reading."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [(0, "file", exc.strerror or str(exc))]
    if len(data) > MAX_BYTES:
        return [], [(0, "file", f"larger than {MAX_BYTES // 1024 // 1024} MB")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return [], [(line, "file", "not UTF-8 text (save the file as CSV UTF-8)")]
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    problems = [(1, "header", f"missing column {name}") for name in REQUIRED
                if name not in header]
    problems += [(1, "header", f"unknown column {name!r}") for name in header
                 if name not in FIELDS]
    if len(set(header)) != len(header):
        problems.append((1, "header", "a column appears twice"))
    if problems:
        return [], problems
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for raw in reader:
            if None in raw:  # more cells than the header has
                problems.append((reader.line_num, "row", "more cells than columns"))
                continue
            if not any((v or "").strip() for v in raw.values()):
                continue  # an empty line a spreadsheet left at the end
            rows.append((reader.line_num, {k: v or "" for k, v in raw.items()}))
    except csv.Error as exc:
        problems.append((reader.line_num, "row", f"unreadable CSV ({exc})"))
    return rows, problems


def run(engine: Engine, path: Path, content: Content, secret: str, today: date, *,
        dry_run: bool = False, progress: Callable[[int, int], Any] | None = None) -> Report:
    rows, problems = read(path)
    report = Report(rows=len(rows), errors=problems)
    if problems:
        return report
    items, report.errors = check_all(rows, content, secret, today)
    if report.errors or dry_run:
        if dry_run and not report.errors:
            with engine.connect() as conn:  # what would happen, then roll back
                tx = conn.begin()
                report.applied = apply(conn, items, content, source="import")
                tx.rollback()
        return report
    with engine.begin() as conn:
        total = Applied()
        for start in range(0, len(items), PROGRESS_EVERY):
            part = apply(conn, items[start:start + PROGRESS_EVERY], content, source="import")
            total.created += part.created
            total.updated += part.updated
            total.unchanged += part.unchanged
            total.notified += part.notified
            total.channels |= part.channels
            if progress is not None:
                progress(min(start + PROGRESS_EVERY, len(items)), len(items))
        report.applied = total
    return report


def print_progress(out: TextIO = sys.stderr) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            out.write("\n")
        out.flush()

    return show

"""The schema's newest revision, read off the migration files: no Alembic, no SQLAlchemy, so
a command can tell that a database is current before it loads either (see db.migrate)."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def schema_head() -> str:
    """The newest migration's revision (``NNNN_what.py`` holds revision NNNN;
    tests/test_db.py holds this to the head Alembic finds)."""
    versions = (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py")
    return max(path.name.split("_", 1)[0] for path in versions)

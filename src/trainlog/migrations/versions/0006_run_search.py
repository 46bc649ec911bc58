"""An index for ``q``, the runs list's text search (a substring of name, config or command).

PostgreSQL: a pg_trgm GIN index on ``search_text``, which serves the list's ``LIKE`` as it
is. pg_trgm ships with PostgreSQL but ``CREATE EXTENSION`` needs the CREATE privilege on the
database; without it (or without the extension) the migration goes on without the index,
logs why once, and ``q`` scans every run as before. The opclass is named with the schema
the extension lives in, which need not be on the search path.

SQLite: an FTS5 table with the trigram tokenizer, ``run_search``, holding each run's
``search_text`` under the run's rowid, kept in step by triggers. A rebuild of
``experiment_runs`` (a batch migration that copies it) drops the triggers and may renumber
rowids: such a migration has to create ``run_search`` again (see upgrade()).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import logging

from alembic import op
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("trainlog.migrations")

TRGM_INDEX = "ix_experiment_runs_search_trgm"

SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE run_search USING fts5(search_text, tokenize='trigram')",
    "INSERT INTO run_search(rowid, search_text) "
    "SELECT rowid, search_text FROM experiment_runs WHERE search_text IS NOT NULL",
    "CREATE TRIGGER run_search_insert AFTER INSERT ON experiment_runs "
    "WHEN new.search_text IS NOT NULL BEGIN "
    "INSERT INTO run_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER run_search_update AFTER UPDATE OF search_text ON experiment_runs BEGIN "
    "DELETE FROM run_search WHERE rowid = old.rowid; "
    "INSERT INTO run_search(rowid, search_text) "
    "SELECT new.rowid, new.search_text WHERE new.search_text IS NOT NULL; END",
    "CREATE TRIGGER run_search_delete AFTER DELETE ON experiment_runs BEGIN "
    "DELETE FROM run_search WHERE rowid = old.rowid; END",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _trigram_index(bind)
    else:
        for statement in SQLITE_SEARCH:
            op.execute(statement)


def _trigram_index(bind: Connection) -> None:
    try:
        # A savepoint: a refused CREATE EXTENSION must not abort the migration's transaction.
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema = bind.exec_driver_sql(
                "SELECT n.nspname FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            ).scalar_one()
            opclass = f"{bind.dialect.identifier_preparer.quote_identifier(schema)}.gin_trgm_ops"
            bind.exec_driver_sql(
                f"CREATE INDEX {TRGM_INDEX} ON experiment_runs USING gin (search_text {opclass})"
            )
    except DBAPIError as exc:
        # The class and SQLSTATE only: the message may say where the database is.
        log.warning(
            "pg_trgm is not available (%s, SQLSTATE %s): searching runs by text (q) scans "
            "every run; docs/architecture.md (Many runs) says how to add the index later",
            type(exc.orig).__name__,
            getattr(exc.orig, "sqlstate", None),
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The extension stays: other tables of the database may use it.
        op.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")
    else:
        for name in ("run_search_insert", "run_search_update", "run_search_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS run_search")

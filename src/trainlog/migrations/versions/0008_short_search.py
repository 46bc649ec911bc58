"""An index for a ``q`` of 1 or 2 characters, which no trigram index (0006) can narrow.

PostgreSQL: ``run_search_grams(text)``, an immutable SQL function giving the text's distinct
substrings of 1 and 2 characters, and a GIN index on it over ``search_text``. A q that short
is a substring of a run's text exactly when it is one of these, so
``run_search_grams(search_text) @> ARRAY[q]`` reads a rare q's runs off the index, and the
index expression's statistics tell the planner how common q is (a common one walks the newest
runs and stops after a page). The index has no predicate: the planner uses the statistics of
an index expression only from an index without one. It needs no extension.

SQLite: an index of (created_at, id, search_text) over the runs not being deleted. A short q
walks it newest first and tests each run's text in the index itself (a run's row is read only
when it matches): 12 MiB to read at 100,000 runs, where the walk of the table read 44.
It still reads every run when fewer than a page match, in time that grows with the runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GRAMS_FUNCTION = "run_search_grams"
GRAMS_INDEX = "ix_experiment_runs_search_grams"
SQLITE_INDEX = "ix_experiment_runs_created_id_search"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # STRICT: no text, no grams (NULL, as the LIKE of a NULL text matches nothing).
        op.execute(
            f"CREATE FUNCTION {GRAMS_FUNCTION}(t text) RETURNS text[] "
            "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ "
            "SELECT array_agg(DISTINCT substr(t, i, n)) "
            "FROM generate_series(1, 2) AS n, generate_series(1, length(t) - n + 1) AS i $$"
        )
        # Without GIN's pending list: every search would read the entries not merged yet (up
        # to 4 MiB: in the bench, right after 100,000 runs were added, a short q took 35 ms
        # at the server, where the query takes ~1 ms once they are merged); each run's grams
        # (about 70 for a short command) go into the index as it is created instead.
        op.execute(
            f"CREATE INDEX {GRAMS_INDEX} ON experiment_runs "
            f"USING gin ({GRAMS_FUNCTION}(search_text)) WITH (fastupdate = off)"
        )
    else:
        op.execute(
            f"CREATE INDEX {SQLITE_INDEX} ON experiment_runs (created_at, id, search_text) "
            "WHERE deleted_at IS NULL"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {GRAMS_INDEX}")
        op.execute(f"DROP FUNCTION {GRAMS_FUNCTION}(text)")
    else:
        op.execute(f"DROP INDEX {SQLITE_INDEX}")

"""Publishing a run: what changes in the warehouse at the end of a run, and in which order.

A run stages everything under its own names first.  Publishing then swaps the staged results
in.  What a run publishes is pure data (:class:`Publication`); how it is swapped in depends on
what the engine guarantees, so each adapter picks one of the two publishers below:

* :func:`publish_in_transaction` (DuckDB, PostgreSQL): everything in one transaction.  State
  tables are rewritten in place (``DELETE`` + ``INSERT``, or ``DROP`` + ``RENAME``); readers see
  the old results or the new ones, never a mix.
* :func:`publish_by_pointer` (engines without multi-statement transactions, e.g. Spark): every
  state table this run rewrites is written under a *new* name, and small append-only rows say
  which names are current.  ``wn.runs``' success row is the commit point: ``scorecard_latest``
  only reads runs that have one, so a run that fails at any step before it leaves the previous
  scorecard readable and unchanged.  ``incremental_state``'s row (the latest per experiment
  wins) names the state tables the next run reads, so a failed run never leaves a half-updated
  state behind.  Views are swapped with ``CREATE OR REPLACE VIEW``, one statement each.
  Replaced tables are dropped after the commit point.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..errors import WarehouseError
from .tables import TABLES, UNIT_METRICS_PREFIX, exposures_view, unit_metrics_table

if TYPE_CHECKING:
    from .adapter import Adapter

STATE_TABLE = "incremental_state"
# stateless unit metrics published by pointer live in tables named like this (the published
# name, unit_metrics__<experiment>, is then a view on the current one)
UNIT_DATA_PREFIX = "unit_data__"

Checkpoint = Callable[[str], None]


@dataclass(frozen=True)
class Part:
    """Rows of ``relation`` (all, or those where ``keep`` holds), in ``columns`` (None: all)."""

    relation: str
    keep: str | None = None
    columns: tuple[str, ...] | None = None

    @property
    def staged_temp(self) -> bool:
        """Temporary relations are unqualified (they live in the session's own schema)."""
        return "." not in self.relation

    def select(self) -> str:
        cols = ", ".join(self.columns) if self.columns else "*"
        where = f" WHERE {self.keep}" if self.keep else ""
        return f"SELECT {cols} FROM {self.relation}{where}"


@dataclass(frozen=True)
class StateWrite:
    """One state table after the run: ``target`` holds the rows of ``parts`` (UNION ALL).

    ``replaces``: the table that held this state before the run (None: there was none).  On an
    engine that rewrites in place it is ``target`` itself, and a part reading ``target`` means
    "keep these rows"; published by pointer, ``target`` is a new name and ``replaces`` is
    dropped once the run is committed."""

    kind: str
    target: str
    parts: tuple[Part, ...]
    replaces: str | None = None

    def in_place_sql(self) -> list[str]:
        """The statements that apply this write inside a transaction."""
        kept = next((p for p in self.parts if p.relation == self.target), None)
        others = [p for p in self.parts if p is not kept]
        base = next((p for p in others if not p.staged_temp and not p.keep and not p.columns), None)
        if kept is not None:          # keep some rows of the table, add the others
            out = [f"DELETE FROM {self.target} WHERE NOT ({kept.keep})"] if kept.keep else []
            return out + [_insert(self.target, p) for p in others]
        if base is not None:          # a staged table becomes the state
            out = [_insert(base.relation, p) for p in others if p is not base]
            return out + [f"DROP TABLE IF EXISTS {self.target}",
                          f"ALTER TABLE {base.relation} RENAME TO {_bare(self.target)}"]
        if self.replaces == self.target:   # only temporary parts: empty the table, refill it
            return [f"DELETE FROM {self.target}"] + [_insert(self.target, p) for p in others]
        return [f"CREATE TABLE {self.target} AS {self.union()}"]

    def new_table_sql(self) -> list[str]:
        """The statements that write this state under its new name (publishing by pointer)."""
        if len(self.parts) == 1 and not self.parts[0].staged_temp and not self.parts[0].keep \
                and not self.parts[0].columns:
            return [f"ALTER TABLE {self.parts[0].relation} RENAME TO {_bare(self.target)}"]
        return [f"CREATE TABLE {self.target} AS {self.union()}"]

    def union(self) -> str:
        return "\nUNION ALL\n".join(p.select() for p in self.parts)


def _insert(target: str, part: Part) -> str:
    cols = f" ({', '.join(part.columns)})" if part.columns else ""
    return f"INSERT INTO {target}{cols} {part.select()}"


def _bare(relation: str) -> str:
    return relation.split(".")[-1]


@dataclass
class Publication:
    """Everything a run publishes (built by the runner; applied by ``adapter.publish``)."""

    schema: str
    experiment: str
    staged_unit_metrics: str | None           # stateless runs: the staged unit_metrics table
    unit_view: str | None                     # incremental runs: the SELECT published as a view
    state_writes: tuple[StateWrite, ...] = ()
    state_row: list[Any] | None = None        # the incremental_state row (None: stateless)
    state_tables: dict[str, str] = field(default_factory=dict)   # state kind -> its table after the run
    rows: list[tuple[str, list[list[Any]]]] = field(default_factory=list)   # table -> rows, in order
    run_row: Callable[[], list[Any]] | None = None   # the wn.runs success row (built at commit time)
    tag: str = ""                             # this run's short id (names of tables written by pointer)
    # wn.scorecard_daily's rows, computed from the state as this run leaves it (so after the
    # state writes, before the commit point); None: this run writes no daily series
    series: Callable[["Adapter"], list[list[Any]]] | None = None

    @property
    def unit_table(self) -> str:
        return unit_metrics_table(self.experiment)


def _replace_exposures_view(adapter: "Adapter", schema: str, without: str | None = None,
                            publishing: str | None = None) -> None:
    """Rebuild ``wn.exposures`` over every experiment's published unit metrics, leaving out
    ``without`` (``publishing``: the unit metrics this run publishes, before its run row).  A ``wn.exposures`` *table* left by an older wn is replaced: every experiment
    it held also has its unit_metrics."""
    relations = adapter.relations(schema)
    current: list[str] = []
    if relations.get("exposures") == "table":
        try:
            adapter.execute(f"DROP TABLE {schema}.exposures")
        except Exception as exc:
            raise WarehouseError(
                f"cannot replace the table {schema}.exposures (written by an older wn) with the view wn now "
                f"publishes: {exc}".strip(), step="publish",
                hint=f"drop or repoint what depends on {schema}.exposures (e.g. your views), then run again") from None
    elif relations.get("exposures") == "view":
        current = adapter.table_columns(schema, "exposures")
    # unit_metrics tables, and the views wn publishes (a view of your own named
    # unit_metrics__* is left out: wn's views belong to experiments it has state or runs for)
    published = {unit_metrics_table(r["experiment"]) for r in adapter.fetch(
        f"select distinct experiment from {schema}.{STATE_TABLE} union "
        f"select distinct experiment from {schema}.runs where status = 'success'")} | {publishing}
    units = {name: adapter.table_columns(schema, name) for name, kind in relations.items()
             if name.startswith(UNIT_METRICS_PREFIX) and name != without and (kind == "table" or name in published)}
    view = exposures_view(schema, units, current)
    if view:
        adapter.execute(adapter.sql(view))


def _insert_results(adapter: "Adapter", pub: Publication, checkpoint: Checkpoint) -> None:
    tables = list(pub.rows)
    if pub.series is not None:
        tables.append(("scorecard_daily", pub.series(adapter)))
    for i, (table, rows) in enumerate(tables):
        adapter.insert_rows(f"{pub.schema}.{table}", TABLES[table], rows)
        if i == 0:
            checkpoint("publish")   # a failure here must leave the previous results intact


def publish_in_transaction(adapter: "Adapter", pub: Publication, checkpoint: Checkpoint) -> None:
    """Swap a run's results in within one transaction (engines with transactional DDL)."""
    schema, unit_table = pub.schema, pub.unit_table
    with adapter.transaction():
        adapter.lock_publish(schema)
        # wn.exposures reads every experiment's unit metrics: point it past this experiment's
        # first, so that engines which track view dependencies (PostgreSQL) let the old
        # relation, and the state tables an old view reads, be dropped
        old = adapter.relations(schema).get(unit_table)
        if old:
            _replace_exposures_view(adapter, schema, without=unit_table)
            try:
                adapter.execute(f"DROP {'VIEW' if old == 'view' else 'TABLE'} {schema}.{unit_table}")
            except Exception as exc:
                raise WarehouseError(
                    f"cannot replace {schema}.{unit_table}: {exc}".strip(), step="publish",
                    hint=f"every run replaces {schema}.{unit_table}; drop or repoint what depends on it "
                         f"(e.g. your views; read {schema}.exposures or copy the rows instead), then run again") from None
        if pub.state_row is not None:
            for write in pub.state_writes:
                for sql in write.in_place_sql():
                    adapter.execute(sql)
            adapter.execute(f"DELETE FROM {schema}.{STATE_TABLE} WHERE experiment = {adapter.placeholder}",
                            [pub.experiment])
            adapter.insert_rows(f"{schema}.{STATE_TABLE}", TABLES[STATE_TABLE], [pub.state_row])
        if pub.unit_view:
            adapter.execute(f"CREATE VIEW {schema}.{unit_table} AS\n{pub.unit_view}")
        else:
            adapter.execute(f"ALTER TABLE {pub.staged_unit_metrics} RENAME TO {unit_table}")
        _replace_exposures_view(adapter, schema, publishing=unit_table)
        _insert_results(adapter, pub, checkpoint)
        if pub.run_row:
            adapter.insert_rows(f"{schema}.runs", TABLES["runs"], [pub.run_row()])


def publish_by_pointer(adapter: "Adapter", pub: Publication, checkpoint: Checkpoint) -> None:
    """Swap a run's results in on an engine without multi-statement transactions (see the
    module docstring for the order and what each failure leaves behind)."""
    schema, unit_table = pub.schema, pub.unit_table
    created: list[str] = []
    try:
        for write in pub.state_writes:            # new tables under new names: nobody reads them yet
            for sql in write.new_table_sql():
                adapter.execute(sql)
            created.append(write.target)
        unit_data = None
        if not pub.unit_view:
            unit_data = f"{schema}.{UNIT_DATA_PREFIX}{pub.experiment}__{pub.tag}"
            adapter.execute(f"ALTER TABLE {pub.staged_unit_metrics} RENAME TO {_bare(unit_data)}")
            created.append(unit_data)
        _insert_results(adapter, pub, checkpoint)  # rows of a run without a success row: not "latest"
        if adapter.relations(schema).get(unit_table) == "table":
            adapter.execute(f"DROP TABLE {schema}.{unit_table}")
        view = pub.unit_view or f"select * from {unit_data}"
        adapter.execute(f"CREATE OR REPLACE VIEW {schema}.{unit_table} AS\n{view}")
        if pub.state_row is not None:             # the next run reads the state this row names
            adapter.insert_rows(f"{schema}.{STATE_TABLE}", TABLES[STATE_TABLE], [pub.state_row])
        if pub.run_row:                           # the commit point of the scorecard
            adapter.insert_rows(f"{schema}.runs", TABLES["runs"], [pub.run_row()])
        created.clear()
    except BaseException:
        for relation in created:                  # nothing names them: they would only take space
            with contextlib.suppress(Exception):
                adapter.execute(f"DROP TABLE IF EXISTS {relation}")
        raise
    with contextlib.suppress(Exception):          # a rebuild of the view is not part of the commit
        _replace_exposures_view(adapter, schema, publishing=unit_table)
    _drop_replaced(adapter, pub, unit_data)


def _drop_replaced(adapter: "Adapter", pub: Publication, unit_data: str | None) -> None:
    """After the commit point: drop what this run replaced, and what failed runs left behind
    (tables of this experiment's state or unit data that nothing names any more).  A stateless
    run leaves the incremental state alone: the next incremental run reads it."""
    schema = pub.schema
    current = {_bare(name).lower() for name in pub.state_tables.values()}
    if unit_data:
        current.add(_bare(unit_data).lower())
    prefixes = [f"{UNIT_DATA_PREFIX}{pub.experiment}__"]
    if pub.state_row is not None:
        prefixes.append(f"state__{pub.experiment}__")
    prefixes = [p.lower() for p in prefixes]
    for name, kind in adapter.relations(schema).items():
        low = name.lower()
        if kind == "table" and low not in current and any(low.startswith(p) for p in prefixes):
            with contextlib.suppress(Exception):
                adapter.execute(f"DROP TABLE IF EXISTS {schema}.{name}")

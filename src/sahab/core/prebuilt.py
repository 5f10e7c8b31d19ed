"""Statements built once per database, for the hottest reads and writes.

Through the ORM a query is compiled anew on every call; on a request that makes a handful
of them (a sealed bid, every API call's token) that compiling costs as much as the
database does. Both kinds here write their SQL once per database from the models' own
fields (a field added to a model is read or written too) and go through the fields' own
conversions, as the ORM would:

- ``JoinedRead``: one SELECT over a few models, turning each row into what
  ``select_related`` would give, one instance per model of the join, None where a left
  join found no row;
- ``Insert``: what ``Model.objects.create`` writes, for a model with no ``save`` of its own
  and no signal receivers (others go through the ORM).

SQL is written with ``{alias.field}`` placeholders ("{t.reference} = %s"), which become
the quoted columns of the models' fields (``pk`` for the primary key), and ``{alias}``,
which becomes the model's table under that alias (for a subquery's FROM).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import NOT_PROVIDED, Model, signals

_PLACEHOLDER = re.compile(r"\{(\w+)(?:\.(\w+))?\}")


@dataclass(frozen=True)
class Join:
    """A model of the read: its alias, its label ("app.Model"; None for the user model)
    and, after the first, its join condition (placeholders and %s parameters allowed);
    a left join unless ``inner``. ``fields`` reads only those (the primary key always),
    the others deferred, as after ``only``."""

    alias: str
    model: str | None
    on: str | None = None
    inner: bool = False
    fields: tuple[str, ...] | None = None


class JoinedRead:
    """``joins`` read where ``where`` holds; ``extra`` names SQL expressions read along
    (set as attributes on the first model's instance, as ``annotate`` would), over the
    joined models and those ``refer`` names by alias (for subqueries); ``lock`` is the
    clause added on a database vendor ("FOR SHARE OF t" on PostgreSQL)."""

    def __init__(self, joins: list[Join], where: str, *, extra: dict[str, str] | None = None,
                 refer: dict[str, str] | None = None,
                 lock: dict[str, str] | None = None) -> None:
        self.joins, self.where = joins, where
        self.extra, self.refer, self.lock = extra or {}, refer or {}, lock or {}
        self._built: dict[tuple[str, str], _Built] = {}

    @cached_property
    def models(self) -> dict[str, type[Model]]:
        """The model of each alias (resolved once the apps are loaded)."""
        labels = {j.alias: j.model for j in self.joins} | self.refer
        return {alias: apps.get_model(label) if label else get_user_model()
                for alias, label in labels.items()}

    def fetch(self, params: list[Any], *, using: str | None = None) -> tuple[list, dict]:
        """The instances of the first row (all None when there is none) and the values of
        ``extra`` by name. ``params`` in the order of the %s of the joins, then ``where``.
        Read from ``using``, by default the database the router reads the first model from
        (a lock, or a read in a write's transaction, reads from the one it writes to: pass
        it)."""
        rows = self.fetch_all(params, using=using, limit=1)
        return rows[0] if rows else ([None] * len(self.joins), {})

    def fetch_all(self, params: list[Any], *, using: str | None = None,
                  limit: int | None = None) -> list[tuple[list, dict]]:
        """Every row, as ``fetch`` returns the first (at most ``limit``)."""
        db = using or router.db_for_read(self.models[self.joins[0].alias])
        connection = connections[db]
        built = self._built.get((db, connection.vendor))
        if built is None:
            built = self._built[db, connection.vendor] = _Built(self, self.models, connection)
        with connection.cursor() as cursor:
            cursor.execute(built.sql, params)
            rows = cursor.fetchmany(limit) if limit else cursor.fetchall()
        return [built.instances(row, connection, db) for row in rows]


def _fields(model: type[Model], names: tuple[str, ...] | None) -> list:
    """The concrete fields of ``model`` to read (``names``: those only, and the primary
    key), in the models' order, which ``Model.from_db`` expects."""
    meta = model._meta
    if names is None:
        return list(meta.concrete_fields)
    chosen = {meta.pk} | {meta.get_field(n) for n in names if n != "pk"}
    return [f for f in meta.concrete_fields if f in chosen]


class _Built:
    """The SQL of a ``JoinedRead`` on one database, and each column's converters."""

    def __init__(self, read: JoinedRead, models: dict[str, type[Model]], connection) -> None:
        quote = connection.ops.quote_name

        def column(match: re.Match) -> str:
            alias, name = match.groups()
            meta = models[alias]._meta
            if name is None:
                return f"{quote(meta.db_table)} {alias}"
            field = meta.pk if name == "pk" else meta.get_field(name)
            return f"{alias}.{quote(field.column)}"

        def sql(text: str) -> str:
            return _PLACEHOLDER.sub(column, text)

        columns, tables = [], []
        self.parts = []  # (model, attribute names, position of the primary key,
        #                  (column, converters) per field)
        for join in read.joins:
            model = models[join.alias]
            if model._meta.parents:  # its fields are in its parents' tables too
                raise ValueError(f"{model._meta.label} inherits another model's table: "
                                 "read it through the ORM")
            fields = _fields(model, join.fields)
            columns += [f"{join.alias}.{quote(f.column)}" for f in fields]
            table = sql(f"{{{join.alias}}}")
            if join.on is None:
                tables.append(f"FROM {table}")
            else:
                kind = "INNER" if join.inner else "LEFT"
                tables.append(f"{kind} JOIN {table} ON {sql(join.on)}")
            converters = [(f.get_col(join.alias),
                           connection.ops.get_db_converters(f.get_col(join.alias))
                           + f.get_db_converters(connection)) for f in fields]
            self.parts.append((model, [f.attname for f in fields],
                               fields.index(model._meta.pk), converters))
        self.extra = list(read.extra)
        columns += [f"{sql(expression)} AS {quote(name)}"
                    for name, expression in read.extra.items()]
        lock = read.lock.get(connection.vendor, "")
        self.sql = (f"SELECT {', '.join(columns)} {' '.join(tables)} WHERE {sql(read.where)}"
                    + (f" {lock}" if lock else ""))

    def instances(self, row, connection, db: str) -> tuple[list, dict]:
        found, start = [], 0
        for model, names, pk, converters in self.parts:
            values = list(row[start:start + len(names)])
            start += len(names)
            if values[pk] is None:  # no primary key: no such row
                found.append(None)
                continue
            for i, (column, functions) in enumerate(converters):
                for convert in functions:
                    values[i] = convert(values[i], column, connection)
            found.append(model.from_db(db, names, values))
        extra = dict(zip(self.extra, row[start:], strict=True))
        if found[0] is not None:
            for name, value in extra.items():
                setattr(found[0], name, value)
        return found, extra


class Insert:
    """The INSERT of one row of ``model`` ("app.Model"), built once per database."""

    def __init__(self, model: str) -> None:
        self.label = model
        self._built: dict[tuple[str, str], tuple[str, list, bool]] = {}

    @cached_property
    def model(self) -> type[Model]:
        return apps.get_model(self.label)

    def create(self, *, using: str | None = None, **values: Any) -> Model:
        """The new row, saved, as ``model.objects.create(**values)`` returns it."""
        model = self.model
        if not _plain(model):
            return model._default_manager.db_manager(using).create(**values)
        instance = model(**values)
        db = using or router.db_for_write(model, instance=instance)
        connection = connections[db]
        built = self._built.get((db, connection.vendor))
        if built is None:
            built = self._built[db, connection.vendor] = _insert_sql(model, connection)
        sql, fields, returning = built
        params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
        meta = model._meta
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            pk = cursor.fetchone()[0] if returning else connection.ops.last_insert_id(
                cursor, meta.db_table, meta.pk.column)
        instance.pk = pk
        instance._state.adding, instance._state.db = False, db
        return instance


def _plain(model: type[Model]) -> bool:
    """Whether ``model.objects.create`` would only write the row: one table (no parent
    model's), no ``save`` of the model's own, no receivers of its save signals, no
    default left to the database."""
    return (not model._meta.parents
            and model.save is Model.save and model.save_base is Model.save_base
            and not signals.pre_save.has_listeners(model)
            and not signals.post_save.has_listeners(model)
            and all(f.db_default is NOT_PROVIDED for f in model._meta.concrete_fields))


def _insert_sql(model: type[Model], connection) -> tuple[str, list, bool]:
    """The INSERT's SQL, the fields it writes (all but a generated primary key), and
    whether it returns the new key (else the cursor's last row id gives it)."""
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.local_concrete_fields
              if not (f is meta.pk and f.db_returning) and not f.generated]
    returning = connection.features.can_return_columns_from_insert
    columns = ", ".join(quote(f.column) for f in fields)
    # names from the model's metadata, values as parameters
    sql = (f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
           f" VALUES ({', '.join(['%s'] * len(fields))})"
           + (f" RETURNING {quote(meta.pk.column)}" if returning else ""))
    return sql, fields, returning

"""Query building: a FHIR search request -> SQL per table, paging, sorting and _summary=count.

Each request parameter is handled by one function: the result parameters (`_count`,
`_sort`, ...) through the `RESULT_PARAMETERS` table, every other name through its declared
`Param` (parameters.py). What is unknown or unsupported is ignored and reported, or refused
with `Prefer: handling=strict`; a malformed value (`birthdate=yesterday`,
`name:missing=maybe`) is refused either way.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from adapters.fhir.shaping import SUMMARIES
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.models import ResourceVersion
from csss_fhir.resources import SERVED
from csss_fhir.search import includes
from csss_fhir.search.parameters import MISSING, PARAMETERS
from csss_fhir.search.values import missing_flag
from csss_fhir.search.visibility import Viewer

DEFAULT_COUNT = 20
MAX_COUNT = 100
SORTS = ("_lastUpdated", "-_lastUpdated")


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    params: list[tuple[str, str]]
    compartment: str | None  # restrict to this Patient id
    strict: bool = False
    may_read: Callable[[str], bool] | None = None  # which types the caller may read

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.compartment, self.may_read)


@dataclass
class SearchResult:
    rows: list[Any]
    total: int
    count: int
    offset: int
    included: list[Any] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    summary_count: bool = False  # _summary=count: the total only
    summary: str | None = None  # _summary=true|text|data|false, applied when rendering
    elements: tuple[str, ...] | None = None  # _elements, applied when rendering
    with_total: bool = True  # _total=none: leave Bundle.total out
    # `_cursor` values of the pages after and before this one (None: no such page; both
    # None on an `_offset` page, whose links page by offset).
    next_cursor: str | None = None
    previous_cursor: str | None = None
    paged_by_cursor: bool = False
    # {row id: the JSON history.record stored for the row's current version}, read with the
    # page for types rendered from their row alone when no _summary/_elements cuts them; a
    # row missing here is rendered.
    stored: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Cursor:
    """A keyset position: the page starts after (or ends before) the row with this
    (lastUpdated, id). Rows added or changed meanwhile never shift what the next page holds,
    as an offset would."""

    updated_at: datetime
    row_id: str
    before: bool = False

    def encode(self) -> str:
        text = json.dumps(["before" if self.before else "after",
                           self.updated_at.isoformat(), self.row_id])
        return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Raises InvalidInputError: not a `_cursor` this server wrote."""
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            direction, stamp, row_id = json.loads(text)
            updated_at = datetime.fromisoformat(stamp)
            if direction not in ("after", "before") or updated_at.tzinfo is None or \
                    not isinstance(row_id, str):
                raise ValueError(direction)
        except (ValueError, TypeError, UnicodeDecodeError) as err:
            raise InvalidInputError(
                f"_cursor={value!r} is not a page position this server gave; follow the "
                "Bundle's next/previous links, or start again without _cursor") from err
        return cls(updated_at, row_id, before=direction == "before")


@dataclass
class _Plan:
    """What the request parameters ask for, collected one parameter at a time."""

    resource_type: str
    strict: bool
    count: int = DEFAULT_COUNT
    offset: int = 0
    cursor: Cursor | None = None
    sort_desc: bool = True
    # `_sort` by declared parameters: (the column of a model, descending), first key first;
    # empty: by lastUpdated (sort_desc), which is what cursors page over.
    sort_keys: list[tuple[Callable[[type], Any], bool]] = field(default_factory=list)
    summary_count: bool = False
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    with_total: bool = True
    includes: list[tuple[str, str]] = field(default_factory=list)  # (kind, value)
    filters: list[tuple[Any, str, str | None]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def refuse(self, label: str, reason: str) -> None:
        """Ignore and report a parameter, or refuse the search when strict."""
        if self.strict:
            raise InvalidInputError(reason)
        self.ignored.append(label)


# --- result parameters: one handler each ---------------------------------------------------

def whole_number(name: str, value: str, *, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError as err:
        raise InvalidInputError(f"{name} must be a whole number, not {value!r}") from err
    if number < minimum:
        raise InvalidInputError(f"{name} must be at least {minimum}, not {number}")
    return min(number, maximum)


def _count(plan: _Plan, name: str, value: str) -> None:
    plan.count = whole_number(name, value, minimum=0, maximum=MAX_COUNT)


def _offset(plan: _Plan, name: str, value: str) -> None:
    plan.offset = whole_number(name, value, minimum=0, maximum=10**9)


def _cursor(plan: _Plan, name: str, value: str) -> None:
    plan.cursor = Cursor.decode(value)


def _sort(plan: _Plan, name: str, value: str) -> None:
    """`_sort=a,-b`: by `_lastUpdated` or any declared parameter, `-` for descending."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    declared = PARAMETERS[plan.resource_type]
    sortable = sorted(name for name, param in declared.items() if param.sort is not None)
    unknown = [k for k in keys if k.lstrip("-") not in sortable and k not in SORTS]
    if not keys or unknown:
        plan.refuse(f"_sort={value}", f"_sort supports _lastUpdated and the search parameters "
                    f"of {plan.resource_type} ({', '.join(sortable)}), each "
                    f"optionally prefixed '-', not {value!r}")
    elif len(keys) == 1 and keys[0] in SORTS:
        plan.sort_desc = keys[0].startswith("-")
    else:
        plan.sort_keys = [
            (declared[key.lstrip("-")].sort if key.lstrip("-") != "_lastUpdated"
             else (lambda m: m.updated_at), key.startswith("-")) for key in keys]


def _summary(plan: _Plan, name: str, value: str) -> None:
    if value == "count":
        plan.summary_count = True
    elif value in SUMMARIES:
        plan.summary = value
    else:
        plan.refuse(f"_summary={value}",
                    f"_summary supports {', '.join(SUMMARIES)}, not {value!r}")


def _elements(plan: _Plan, name: str, value: str) -> None:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise InvalidInputError("_elements names no element; send e.g. _elements=name,gender")
    plan.elements = (*(plan.elements or ()), *names)


def _total(plan: _Plan, name: str, value: str) -> None:
    """`none` leaves the total out; `estimate` and `accurate` both get the exact count."""
    if value not in ("none", "estimate", "accurate"):
        plan.refuse(f"_total={value}",
                    f"_total supports none, estimate and accurate, not {value!r}")
    else:
        plan.with_total = value != "none"


def _format(plan: _Plan, name: str, value: str) -> None:
    """Content negotiation already answered `_format`; search has nothing to do."""


def _include(plan: _Plan, name: str, value: str) -> None:
    kind = name.partition(":")[0]  # _include:iterate is accepted as a plain _include
    if includes.is_supported(kind, plan.resource_type, value):
        plan.includes.append((kind, value))
        return
    supported = includes.supported(kind, plan.resource_type)
    plan.refuse(f"{kind}={value}", f"{kind}={value} is not supported on {plan.resource_type}; "
                                   f"supported: {', '.join(supported) or 'none'}")


RESULT_PARAMETERS: dict[str, Callable[[_Plan, str, str], None]] = {
    "_count": _count,
    "_offset": _offset,
    "_cursor": _cursor,
    "_sort": _sort,
    "_summary": _summary,
    "_elements": _elements,
    "_total": _total,
    "_format": _format,
    "_include": _include,
    "_revinclude": _include,
}
_TAKE_MODIFIERS = frozenset({"_include", "_revinclude"})


def _filter(plan: _Plan, name: str, value: str) -> None:
    """A declared search parameter: keep it as a filter, or refuse what it cannot do."""
    base_name, _, modifier = name.partition(":")
    parameter = PARAMETERS[plan.resource_type].get(base_name)
    if parameter is None or value == "":
        plan.refuse(name, f"unknown search parameter {name!r} for {plan.resource_type}; "
                          f"supported: {', '.join(sorted(PARAMETERS[plan.resource_type]))}")
    elif not parameter.supports(modifier or None):
        plan.refuse(name, f"the modifier :{modifier} is not supported on {base_name}; "
                          f"supported: {', '.join(sorted(parameter.modifiers)) or 'none'}")
    else:
        if modifier == MISSING:
            missing_flag(base_name, value)  # refused even when lenient: it is malformed
        plan.filters.append((parameter, value, modifier or None))


def _handler(name: str) -> Callable[[_Plan, str, str], None]:
    base_name = name.partition(":")[0]
    if base_name in _TAKE_MODIFIERS:
        return RESULT_PARAMETERS[base_name]
    return RESULT_PARAMETERS.get(name, _filter)


def plan_search(request: SearchRequest) -> _Plan:
    """Read the request parameters, each through its handler.

    Raises:
        ResourceNotFoundError: the type is not searchable.
        InvalidInputError: a malformed value, or (strict) an unknown or unsupported one.
    """
    if request.resource_type not in PARAMETERS:
        raise ResourceNotFoundError(f"{request.resource_type} is not searchable here")
    plan = _Plan(request.resource_type, request.strict)
    for name, value in request.params:
        _handler(name)(plan, name, value)
    return plan


# --- running the plan ------------------------------------------------------------------------

def _conditions(session: Session, plan: _Plan, viewer: Viewer, model: type
                ) -> list[ColumnElement[bool]]:
    conditions = viewer.where(plan.resource_type, model)
    conditions += [parameter.where(model, value, modifier, session)
                   for parameter, value, modifier in plan.filters]
    return conditions


def _keyset(model: type, cursor: Cursor, descending: bool) -> ColumnElement[bool]:
    """Rows strictly beyond the cursor in (updated_at, id) order."""
    if descending:
        return or_(model.updated_at < cursor.updated_at,
                   and_(model.updated_at == cursor.updated_at, model.id < cursor.row_id))
    return or_(model.updated_at > cursor.updated_at,
               and_(model.updated_at == cursor.updated_at, model.id > cursor.row_id))


def _with_stored(plan: _Plan) -> bool:
    """Whether the page's rows come with their stored JSON (see SearchResult.stored)."""
    served = SERVED[plan.resource_type]
    return (served.from_row_alone and len(served.models) == 1 and not plan.elements
            and plan.summary in (None, "false"))


def _matches(session: Session, plan: _Plan, viewer: Viewer, stored: dict[str, bytes]
             ) -> tuple[list[Any], int, bool]:
    """(the page of rows, the total, whether more rows lie beyond the page in the direction
    read), over every table served as the searched type; adds the rows' stored JSON to
    `stored` when `_with_stored`, by the page's own query."""
    if plan.sort_keys:
        return _sorted_matches(session, plan, viewer)
    cursor = plan.cursor
    # A page before a cursor is read backwards from it, then turned round.
    descending = plan.sort_desc != bool(cursor and cursor.before)
    skip = 0 if cursor else plan.offset
    rows: list[Any] = []
    total = 0
    for model in SERVED[plan.resource_type].models:
        query = select(model).where(*_conditions(session, plan, viewer, model))
        counted = select(func.count()).select_from(query.subquery())
        if plan.summary_count:
            total += session.scalar(counted)
            continue
        paged = query.where(_keyset(model, cursor, descending)) if cursor else query
        order = (model.updated_at.desc(), model.id.desc()) if descending else \
            (model.updated_at.asc(), model.id.asc())
        limit = skip + plan.count + 1
        if _with_stored(plan):
            found = []
            for row, body in session.execute(_joined_stored(paged, plan.resource_type, model)
                                             .order_by(*order).limit(limit)):
                found.append(row)
                if body is not None:
                    stored[row.id] = body
        else:
            found = list(session.scalars(paged.order_by(*order).limit(limit)))
        # Fewer rows than the limit from the whole match (no cursor cut it) are all the
        # matches: their number is the total, and the count query is not needed.
        total += len(found) if cursor is None and len(found) < limit else \
            session.scalar(counted)
        rows.extend(found)
    # Observation spans two tables: merge their pages, then cut the requested one.
    rows.sort(key=lambda r: (r.updated_at, r.id), reverse=descending)
    page = rows[skip:skip + plan.count]
    more = len(rows) > skip + plan.count
    if cursor and cursor.before:
        page.reverse()
    return page, total, more


def _joined_stored(query: Select, resource_type: str, model: type) -> Select:
    """`query` with the JSON stored for each row's current version (NULL: not stored)."""
    return query.add_columns(ResourceVersion.body).outerjoin(ResourceVersion, and_(
        ResourceVersion.resource_type == resource_type,
        ResourceVersion.resource_id == model.id,
        ResourceVersion.version_id == model.version_id))


def _sorted_matches(session: Session, plan: _Plan, viewer: Viewer
                    ) -> tuple[list[Any], int, bool]:
    """As _matches, ordered by `_sort` keys (then id); paged by offset, as a cursor is a
    position in lastUpdated order only."""
    rows: list[tuple[tuple[Any, ...], Any]] = []
    total = 0
    for model in SERVED[plan.resource_type].models:
        query = select(model).where(*_conditions(session, plan, viewer, model))
        total += session.scalar(select(func.count()).select_from(query.subquery()))
        if plan.summary_count:
            continue
        columns = [column(model) for column, _ in plan.sort_keys]
        order = [(c.desc() if desc else c.asc()).nulls_last()
                 for c, (_, desc) in zip(columns, plan.sort_keys, strict=True)]
        keyed = select(model, *columns).where(*_conditions(session, plan, viewer, model))
        for found in session.execute(keyed.order_by(*order, model.id)
                                     .limit(plan.offset + plan.count + 1)):
            rows.append((tuple(found[1:]), found[0]))
    # Observation spans two tables: merge by the same keys (absent values last), stable
    # sorts from the last key to the first.
    rows.sort(key=lambda item: item[1].id)
    for index in reversed(range(len(plan.sort_keys))):
        desc = plan.sort_keys[index][1]
        present = [item for item in rows if item[0][index] is not None]
        absent = [item for item in rows if item[0][index] is None]
        present.sort(key=lambda item, i=index: item[0][i], reverse=desc)
        rows = present + absent
    ordered = [row for _, row in rows]
    return (ordered[plan.offset:plan.offset + plan.count], total,
            len(ordered) > plan.offset + plan.count)


def search(session: Session, request: SearchRequest) -> SearchResult:
    """Run a FHIR search; unknown parameters are ignored (strict: refused)."""
    plan = plan_search(request)
    viewer = request.viewer
    stored: dict[str, bytes] = {}
    rows, total, more = _matches(session, plan, viewer, stored)
    found = [row for kind, value in plan.includes
             for row in includes.find_included(session, kind, value, rows)]
    result = SearchResult(rows=rows, total=total, count=plan.count, offset=plan.offset,
                          included=includes.visible_unique(viewer, found, rows),
                          ignored=plan.ignored, summary_count=plan.summary_count,
                          summary=plan.summary, elements=plan.elements,
                          with_total=plan.with_total, stored=stored)
    if not plan.sort_keys:
        _link_cursors(result, plan.cursor, more)
    return result


def _link_cursors(result: SearchResult, cursor: Cursor | None, more: bool) -> None:
    """The cursors of the neighbouring pages: keyset positions at this page's ends."""
    if result.summary_count:
        return
    result.paged_by_cursor = cursor is not None or result.offset == 0
    if not result.rows:
        return
    first, last = result.rows[0], result.rows[-1]
    after = Cursor(last.updated_at, last.id).encode()
    before = Cursor(first.updated_at, first.id, before=True).encode()
    if cursor is None:
        if result.offset == 0:  # the first page: next by cursor
            result.next_cursor = after if more else None
        return
    if cursor.before:
        result.next_cursor, result.previous_cursor = after, before if more else None
    else:
        result.next_cursor, result.previous_cursor = after if more else None, before


def find(session: Session, resource_type: str, resource_id: str, compartment: str | None
         ) -> Any:
    """Read one row by FHIR type and id within the compartment.

    Raises:
        ResourceNotFoundError: unknown type or id, or outside the caller's compartment.
    """
    served = SERVED.get(resource_type)
    if served is None:
        raise ResourceNotFoundError(f"{resource_type} is not a resource type served here")
    viewer = Viewer(compartment)
    for model in served.models:
        row = session.get(model, resource_id)
        if row is not None and viewer.sees(row, resource_type):
            return row
    raise ResourceNotFoundError(f"{resource_type}/{resource_id} does not exist")


def find_with_stored(session: Session, resource_type: str, resource_id: str,
                     compartment: str | None) -> tuple[Any, bytes | None]:
    """As `find`, with the JSON history.record stored for the row's current version (None
    when that version was not stored), read by the same query: one round trip per read.

    Raises:
        ResourceNotFoundError: unknown type or id, or outside the caller's compartment.
    """
    served = SERVED.get(resource_type)
    if served is None or len(served.models) != 1:
        return find(session, resource_type, resource_id, compartment), None
    model = served.models[0]
    found = session.execute(
        select(model, ResourceVersion.body).outerjoin(ResourceVersion, and_(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == model.id,
            ResourceVersion.version_id == model.version_id)).where(model.id == resource_id)
    ).first()
    if found is None or not Viewer(compartment).sees(found[0], resource_type):
        raise ResourceNotFoundError(f"{resource_type}/{resource_id} does not exist")
    return found[0], found[1]

"""What a scan produces per record, kept on disk instead of in memory: findings, check
outcomes, the fuzz stage's per-record entries and the clean records it fuzzes.

Each is a :class:`Spill`: an append-only sequence whose items are pickled, one after another,
into an anonymous temporary file (``tempfile.TemporaryFile``: on Linux it has no name in any
directory, so it is gone when it is closed or the process ends, however it ends: an error,
Ctrl-C, a kill). Only the byte offset of each item stays in memory (8 bytes an item), with
the items appended since the last write (written a block of ~1 MB at a time), so a scan's
peak memory does not grow with its number of records; every reader (scan.json,
findings.jsonl, SARIF, JUnit, report.md, the terminal table) reads the items back one at a
time. A ``Spill`` is a :class:`~collections.abc.Sequence` (``len``, indexing, slicing,
iteration in order) with ``append`` and ``extend``; an item read back is a new object, so
changing it changes nothing stored.

:class:`FindingStore` and :class:`CheckStore` also keep, as they are appended to, the small
things their readers need without reading every item back: the summary's counts
(:class:`Tally`), each finding's position by id and its brief (JUnit's failure texts, in a
spill of their own) and each layer's check outcomes (JUnit's suites: plain rows, a batch to
a pickle, one spill per layer).

>>> s = Spill([1, 2])
>>> s.append({"a": 3})
>>> len(s), s[2], s[-1] == s[2], list(s[:2]), list(s)
(3, {'a': 3}, True, [1, 2], [1, 2, {'a': 3}])
>>> s.close()
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

T = TypeVar("T")

_READ = 1 << 20  # bytes read at a time when iterating
_WRITE = 1 << 20  # bytes appended before they are written


class _Lazy(Sequence[T], Generic[T]):
    """A sequence whose items are made on demand (:meth:`_item`): indexing (negative too) and
    slicing for the stores below."""

    def _item(self, index: int) -> T:  # 0 <= index < len(self)
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(index)

    def __reduce__(self) -> Any:  # pickled (a worker, a copy): as the list it stands for
        return (list, (list(self),))


class Spill(_Lazy[T], Generic[T]):
    """An append-only sequence of picklable items in an anonymous temporary file."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._file: Any = None
        self._offsets = array("q", [0])
        self._pending = bytearray()
        self._dirty = False
        self.extend(items)

    def _handle(self) -> Any:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="policystrata-scan-")  # noqa: SIM115 (kept open: closed by close())
        return self._file

    def append(self, item: T) -> None:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending += data
        self._offsets.append(self._offsets[-1] + len(data))
        if len(self._pending) >= _WRITE:
            self._flush()

    def _flush(self) -> None:
        """Write what was appended since the last write (appends are written a block at a
        time, not one write per item)."""
        if self._pending:
            self._handle().write(self._pending)
            self._pending = bytearray()
            self._dirty = True

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _read(self, start: int, size: int) -> bytes:
        self._flush()
        if self._dirty:
            self._file.flush()
            self._dirty = False
        return os.pread(self._file.fileno(), size, start)

    def _item(self, index: int) -> T:
        start = self._offsets[index]
        item: T = pickle.loads(self._read(start, self._offsets[index + 1] - start))
        return item

    def __iter__(self) -> Iterator[T]:
        """The items in order, read a block at a time (not one read per item)."""
        offsets, n = self._offsets, len(self)
        i = 0
        while i < n:
            j = i + 1  # items i..j-1 in one read of at most _READ bytes (at least one item)
            while j < n and offsets[j + 1] - offsets[i] <= _READ:
                j += 1
            block = self._read(offsets[i], offsets[j] - offsets[i])
            base = offsets[i]
            for k in range(i, j):
                yield pickle.loads(block[offsets[k] - base : offsets[k + 1] - base])
            i = j

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)} item(s) on disk>"

    def close(self) -> None:
        """Remove the file (the items are gone; the sequence is then empty)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._offsets = array("q", [0])
        self._pending = bytearray()
        self._dirty = False


class Tally:
    """The summary's counts (summary.json), kept as findings and check outcomes come.

    >>> from policystrata.results import CheckOutcome
    >>> t = Tally()
    >>> t.check(CheckOutcome(layer="compiler", check="c", record="r", status="passed"))
    >>> t.layers
    {'compiler': {'ran': 1, 'passed': 1}}
    """

    FINDING_KEYS = (
        "by_class",
        "by_severity",
        "by_confidence",
        "by_layer",
        "by_regression_case",
        "by_evidence_level",
    )

    def __init__(self) -> None:
        self.findings = 0
        self.by: dict[str, Counter[Any]] = {k: Counter() for k in self.FINDING_KEYS}
        self.checks: dict[str, dict[str, int]] = {}
        self.layers: dict[str, dict[str, int]] = {}

    def finding(self, f: Any) -> None:
        self.findings += 1
        by = self.by
        by["by_class"][f.witness_class] += 1
        by["by_severity"][f.severity] += 1
        by["by_confidence"][f.confidence] += 1
        by["by_layer"][f.surface] += 1
        by["by_regression_case"][f.regression_case or "unclassified"] += 1
        by["by_evidence_level"][f.evidence_level] += 1

    def check(self, c: Any) -> None:
        for bucket in (self.checks.setdefault(c.check, {}), self.layers.setdefault(c.layer, {})):
            bucket["ran"] = bucket.get("ran", 0) + 1
            bucket[c.status] = bucket.get(c.status, 0) + 1

    @classmethod
    def of(cls, findings: Iterable[Any] = (), checks: Iterable[Any] = ()) -> Tally:
        """The counts of ``findings`` and ``checks`` (a store's own when they are stores)."""
        out = cls()
        if isinstance(findings, FindingStore):
            out.findings, out.by = findings.tally.findings, findings.tally.by
        else:
            for f in findings:
                out.finding(f)
        if isinstance(checks, CheckStore):
            out.checks, out.layers = checks.tally.checks, checks.tally.layers
        else:
            for c in checks:
                out.check(c)
        return out


class FindingBrief(NamedTuple):
    """What JUnit's failure text reads of a finding (kept apart from the whole finding, whose
    witness and proof make it ~50 times larger to read back)."""

    id: str
    severity: str
    confidence: str
    message: str
    probable_fix: str
    recheck: str


class FindingStore(Spill[Any]):
    """The findings of a scan, in order, with their counts, each one's position by id (the
    last finding with an id, as ``{f.id: f for f in findings}`` keeps it) and each one's
    :class:`FindingBrief` (in a spill of their own)."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.tally = Tally()
        self.positions: dict[str, int] = {}
        self.briefs: Spill[FindingBrief] = Spill()
        super().__init__(items)

    def append(self, item: Any) -> None:
        self.positions[item.id] = len(self)
        self.tally.finding(item)
        super().append(item)
        self.briefs.append(
            FindingBrief(
                item.id,
                item.severity,
                item.confidence,
                item.message,
                item.probable_fix,
                item.recheck,
            )
        )

    def by_id(self) -> _ById:
        """``{f.id: f for f in self}`` without holding every finding: each read on demand."""
        return _ById(self)

    def briefs_by_id(self) -> _ById:
        """``{f.id: brief of f for f in self}``, each brief read on demand."""
        return _ById(self, self.briefs)

    def close(self) -> None:
        super().close()
        self.briefs.close()


class _ById:
    def __init__(self, store: FindingStore, items: Spill[Any] | None = None) -> None:
        self.store = store
        self.items: Spill[Any] = store if items is None else items

    def __contains__(self, key: object) -> bool:
        return key in self.store.positions

    def __getitem__(self, key: str) -> Any:
        return self.items[self.store.positions[key]]

    def get(self, key: str, default: Any = None) -> Any:
        n = self.store.positions.get(key)
        return default if n is None else self.items[n]


#: A check outcome as a :class:`CheckStore` keeps it: layer, check, record, location file
#: (None: no location), location line, status, finding ids, message.
CheckRow = tuple[str, str, str, "str | None", "int | None", str, "list[str]", "str | None"]


def check_row(c: Any) -> CheckRow:
    """A :class:`~policystrata.results.CheckOutcome` as a row."""
    loc = c.location
    return (
        c.layer,
        c.check,
        c.record,
        None if loc is None else loc.file,
        None if loc is None else loc.line,
        c.status,
        list(c.finding_ids),
        c.message,
    )


def check_outcome(row: CheckRow) -> Any:
    """A row as the :class:`~policystrata.results.CheckOutcome` it was made of (built without
    validating again: it was validated when it was made)."""
    from policystrata.results import CheckOutcome, Location

    layer, check, record, file, line, status, ids, message = row
    location = None if file is None else Location.model_construct(file=file, line=line)
    return CheckOutcome.model_construct(
        layer=layer,
        check=check,
        record=record,
        location=location,
        status=status,
        finding_ids=list(ids),
        message=message,
    )


class CheckStore(_Lazy[Any]):
    """The check outcomes of a scan (~50 a record), in order, with their counts, kept on disk
    a layer at a time (JUnit writes one suite per layer).

    Each outcome is kept as a plain row (:data:`CheckRow`), and each layer's rows are pickled
    :attr:`BATCH` at a time into the layer's :class:`Spill` (one pickle per batch, not one
    per outcome: a 10,000-record scan has ~500,000 outcomes). In memory stay the last
    unwritten batch of each layer, one byte an outcome for its layer (the order) and four for
    its position in its layer. Reading gives :class:`~policystrata.results.CheckOutcome`
    objects; :meth:`rows` gives a layer's rows, read a batch at a time.

    >>> from policystrata.results import CheckOutcome
    >>> s = CheckStore([CheckOutcome(layer=x, check="c", record=str(n), status="passed")
    ...                 for n, x in enumerate("abab")])
    >>> [(c.layer, c.record) for c in s], s[2].record, len(s.layer("b"))
    ([('a', '0'), ('b', '1'), ('a', '2'), ('b', '3')], '2', 2)
    >>> s.tally.layers["a"]
    {'ran': 2, 'passed': 2}
    """

    BATCH = 256

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.tally = Tally()
        self.by_layer: dict[str, _Layer] = {}
        self._names: list[str] = []
        self._order = array("B")  # each outcome's layer (its index in _names)
        self._index = array("I")  # each outcome's position in its layer
        self.extend(items)

    def append(self, item: Any) -> None:
        layer = self.by_layer.get(item.layer)
        if layer is None:
            if len(self._names) == 256:
                raise ValueError("a scan's check outcomes name more than 256 layers")
            layer = self.by_layer[item.layer] = _Layer(len(self._names), self.BATCH)
            self._names.append(item.layer)
        self.tally.check(item)
        self._order.append(layer.code)
        self._index.append(layer.count)
        layer.add(check_row(item))

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return len(self._order)

    def _item(self, index: int) -> Any:
        layer = self.by_layer[self._names[self._order[index]]]
        return check_outcome(layer.row(self._index[index]))

    def __iter__(self) -> Iterator[Any]:
        """The outcomes in order (each layer's rows read a batch at a time)."""
        rows = {layer.code: layer.rows() for layer in self.by_layer.values()}
        for code in self._order:
            yield check_outcome(next(rows[code]))

    def layer(self, name: str) -> Sequence[Any]:
        """One layer's outcomes, in order."""
        return _LayerView(self.by_layer.get(name) or _Layer(-1, self.BATCH))

    def rows(self, name: str) -> Iterator[CheckRow]:
        """One layer's outcomes as rows, in order (what JUnit reads)."""
        layer = self.by_layer.get(name)
        return layer.rows() if layer is not None else iter(())

    def close(self) -> None:
        """Remove the files (the outcomes are gone; the store is then empty)."""
        for layer in self.by_layer.values():
            layer.spill.close()
        self.by_layer, self._names = {}, []
        self._order, self._index = array("B"), array("I")

    def __repr__(self) -> str:
        return f"<CheckStore of {len(self)} outcome(s) on disk>"


class _Layer:
    """One layer's rows: full batches in a spill, the last one in memory."""

    def __init__(self, code: int, size: int) -> None:
        self.code, self.size, self.count = code, size, 0
        self.spill: Spill[list[CheckRow]] = Spill()
        self.batch: list[CheckRow] = []

    def add(self, row: CheckRow) -> None:
        self.batch.append(row)
        self.count += 1
        if len(self.batch) == self.size:
            self.spill.append(self.batch)
            self.batch = []

    def row(self, n: int) -> CheckRow:
        b, i = divmod(n, self.size)
        return self.batch[i] if b == len(self.spill) else self.spill[b][i]

    def rows(self) -> Iterator[CheckRow]:
        for batch in self.spill:
            yield from batch
        yield from list(self.batch)


class _LayerView(_Lazy[Any]):
    """One layer's outcomes, read on demand."""

    def __init__(self, layer: _Layer) -> None:
        self._layer = layer

    def __len__(self) -> int:
        return self._layer.count

    def _item(self, index: int) -> Any:
        return check_outcome(self._layer.row(index))

    def __iter__(self) -> Iterator[Any]:
        return (check_outcome(r) for r in self._layer.rows())

"""What a scan produces per record, kept on disk instead of in memory: findings, check
outcomes, the fuzz stage's per-record entries and the clean records it fuzzes.

Each is a :class:`Spill`: an append-only sequence whose items are pickled, one after another,
into an anonymous temporary file (``tempfile.TemporaryFile``: on Linux it has no name in any
directory, so it is gone when it is closed or the process ends, however it ends: an error,
Ctrl-C, a kill). Only the byte offset of each item stays in memory (8 bytes an item), so a
scan's peak memory does not grow with its number of records; every reader (scan.json,
findings.jsonl, SARIF, JUnit, report.md, the terminal table) reads the items back one at a
time. A ``Spill`` is a :class:`~collections.abc.Sequence` (``len``, indexing, slicing,
iteration in order) with ``append`` and ``extend``; an item read back is a new object, so
changing it changes nothing stored.

:class:`FindingStore` and :class:`CheckStore` also keep, as they are appended to, the small
things their readers need without reading every item back: the summary's counts
(:class:`Tally`), each finding's position by id (JUnit's failure texts) and each layer's
checks (JUnit's suites).

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
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

_READ = 1 << 20  # bytes read at a time when iterating


class Spill(Sequence[T], Generic[T]):
    """An append-only sequence of picklable items in an anonymous temporary file."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._file: Any = None
        self._offsets = array("q", [0])
        self._dirty = False
        self.extend(items)

    def _handle(self) -> Any:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="policystrata-scan-")  # noqa: SIM115 (kept open: closed by close())
        return self._file

    def append(self, item: T) -> None:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        self._handle().write(data)
        self._offsets.append(self._offsets[-1] + len(data))
        self._dirty = True

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _read(self, start: int, size: int) -> bytes:
        if self._dirty:
            self._file.flush()
            self._dirty = False
        return os.pread(self._file.fileno(), size, start)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("Spill index out of range")
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

    def __reduce__(self) -> Any:  # pickled (a worker, a copy): as the list it stands for
        return (list, (list(self),))

    def close(self) -> None:
        """Remove the file (the items are gone; the sequence is then empty)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._offsets = array("q", [0])
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


class FindingStore(Spill[Any]):
    """The findings of a scan, in order, with their counts and each one's position by id
    (the last finding with an id, as ``{f.id: f for f in findings}`` keeps it)."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.tally = Tally()
        self.positions: dict[str, int] = {}
        super().__init__(items)

    def append(self, item: Any) -> None:
        self.positions[item.id] = len(self)
        self.tally.finding(item)
        super().append(item)

    def by_id(self) -> _ById:
        """``{f.id: f for f in self}`` without holding every finding: each read on demand."""
        return _ById(self)


class _ById:
    def __init__(self, store: FindingStore) -> None:
        self.store = store

    def __contains__(self, key: object) -> bool:
        return key in self.store.positions

    def __getitem__(self, key: str) -> Any:
        return self.store[self.store.positions[key]]

    def get(self, key: str, default: Any = None) -> Any:
        n = self.store.positions.get(key)
        return default if n is None else self.store[n]


class CheckStore(Spill[Any]):
    """The check outcomes of a scan, in order, with their counts and the positions of each
    layer's outcomes (JUnit writes one suite per layer)."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.tally = Tally()
        self.by_layer: dict[str, array[int]] = {}
        super().__init__(items)

    def append(self, item: Any) -> None:
        self.by_layer.setdefault(item.layer, array("q")).append(len(self))
        self.tally.check(item)
        super().append(item)

    def layer(self, name: str) -> _Positions:
        return _Positions(self, self.by_layer.get(name, array("q")))


class _Positions(Sequence[Any]):
    """Some items of a spill, by position, read on demand (one layer's check outcomes)."""

    def __init__(self, spill: Spill[Any], positions: array[int]) -> None:
        self.spill, self.positions = spill, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.spill[p] for p in self.positions[index]]
        return self.spill[self.positions[index]]

    def __iter__(self) -> Iterator[Any]:
        for p in self.positions:
            yield self.spill[p]

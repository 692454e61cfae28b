"""The series store of one tenant's generated metrics, and everything that reads it out.

Owns: grouping a batch's rows by label values (``group_rows``: Arrow dictionary encoding plus
numpy, no per-span Python), counters and classic histograms whose series live in numpy arrays
and are updated once per group, exemplars (the latest observation of each histogram bucket,
label ``traceID``), stale-series removal, Prometheus text (0.0.4) and OpenMetrics (1.0, with
exemplars) rendering, and the snapshot of every series as remote-write time series
(``_bucket{le}``, ``_sum``, ``_count`` for histograms; a 0 sample just before the first real
one of a new series, as Tempo does, so ``increase()`` counts the first observations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# (name, value) pairs sorted by name; samples (value, timestamp ms); exemplars
# (traceID, value, timestamp ms)
Labels = tuple[tuple[str, str], ...]
Sample = tuple[float, int]
Exemplar = tuple[str, float, int]
TimeSeries = tuple[Labels, tuple[Sample, ...], tuple[Exemplar, ...]]

TRACE_ID_LABEL = "traceID"
_MAX_CODE = 2**62


@dataclass(frozen=True, slots=True)
class EnumColumn:
    """An integer column whose values are looked up in ``names`` (e.g. OTLP span kinds)."""

    codes: np.ndarray
    names: Sequence[str]


LabelColumn = pa.Array | EnumColumn


@dataclass(slots=True)
class Groups:
    """Rows grouped by their label values: ``gid[row]`` is the index of the row's group."""

    gid: np.ndarray
    keys: list[tuple[str, ...]]

    @property
    def count(self) -> int:
        return len(self.keys)


def group_rows(columns: Sequence[LabelColumn], n: int) -> Groups:
    """Group ``n`` rows by the tuple of their values in ``columns`` (nulls count as "").

    Each column is turned into small integer codes (dictionary encoding); the codes combine
    into one mixed-radix code per row, and the occupied codes (found with ``bincount`` when
    the code space is small, else a sort) are the groups."""
    if n == 0:
        return Groups(np.zeros(0, dtype=np.int64), [])
    per_column: list[tuple[np.ndarray, Sequence[str], int]] = []
    for col in columns:
        if isinstance(col, EnumColumn):
            idx = col.codes.astype(np.int64, copy=False)
            per_column.append((idx, col.names, int(idx.max()) + 1))
            continue
        arr = col.fill_null("") if col.null_count else col
        enc = pc.dictionary_encode(arr)
        idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        values = enc.dictionary.to_pylist()
        per_column.append((idx, values, max(len(values), 1)))
    code = np.zeros(n, dtype=np.int64)
    card = 1
    dense = True
    for idx, _, size in per_column:
        if card * size >= _MAX_CODE:  # keep the combined code within int64
            uniq, code = np.unique(code, return_inverse=True)
            card, dense = len(uniq), False
        code = code * size + idx
        card *= size
    if dense and card <= max(4 * n, 65536):
        occupied = np.flatnonzero(np.bincount(code, minlength=card))
        remap = np.zeros(card, dtype=np.int64)
        remap[occupied] = np.arange(len(occupied), dtype=np.int64)
        gid = remap[code]
        picked: list[list[str]] = []
        rest = occupied
        for _, values, size in reversed(per_column):  # undo the mixed radix, last column first
            rest, digit = np.divmod(rest, size)
            picked.append([values[i] for i in digit.tolist()])
        picked.reverse()
        return Groups(gid, list(zip(*picked, strict=True)))
    _, first, gid = np.unique(code, return_index=True, return_inverse=True)
    chosen = [[values[i] for i in idx[first].tolist()] for idx, values, _ in per_column]
    return Groups(gid.reshape(-1), list(zip(*chosen, strict=True)))


def fixed_width_bytes(arr: pa.Array, width: int) -> np.ndarray:
    """A fixed-size binary column as an (n, width) uint8 array (zero-copy; zeros where null)."""
    n = len(arr)
    buf = arr.buffers()[1]
    if buf is None:
        return np.zeros((n, width), dtype=np.uint8)
    data = np.frombuffer(buf, dtype=np.uint8)[arr.offset * width : (arr.offset + n) * width]
    out = data.reshape(n, width)
    if arr.null_count:
        out = out.copy()
        out[~arr.is_valid().to_numpy(zero_copy_only=False)] = 0
    return out


def trace_id_hex(trace_id: bytes) -> str:
    """Tempo's exemplar form: lower-case hex with leading zeros stripped ("0" for all zero)."""
    return trace_id.hex().lstrip("0") or "0"


def format_value(value: float) -> str:
    """Go-style shortest float text: ``3``, ``0.25``, ``1e+21``, ``+Inf``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)) + "}"


class _Family:
    """Series of one metric, each a row in the family's numpy arrays."""

    kind = ""
    # the numpy arrays with one row per series (grown and compacted together)
    series_arrays: tuple[str, ...] = ("updated", "fresh")

    def __init__(self, registry: Registry, name: str, help_text: str, labels: Sequence[str]):
        self.registry = registry
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.index: dict[tuple[str, ...], int] = {}
        self.keys: list[tuple[str, ...]] = []
        self.size = 0
        self._alloc(16)

    def _alloc(self, capacity: int) -> None:
        self.updated = np.zeros(capacity, dtype=np.float64)  # unix seconds of the last update
        self.fresh = np.zeros(capacity, dtype=bool)  # never remote-written yet

    def _grow(self, capacity: int) -> None:
        old = {k: getattr(self, k) for k in self.series_arrays}
        self._alloc(capacity)
        for k, v in old.items():
            getattr(self, k)[: self.size] = v[: self.size]

    @property
    def capacity(self) -> int:
        return len(self.updated)

    def slots(self, keys: Sequence[tuple[str, ...]], now: float) -> np.ndarray:
        """The series row of each key (created when new; -1 when the series limit refuses)."""
        out = np.empty(len(keys), dtype=np.int64)
        index = self.index
        for i, key in enumerate(keys):
            slot = index.get(key)
            if slot is None:
                slot = self._create(key)
            out[i] = slot
        ok = out[out >= 0]
        self.updated[ok] = now
        return out

    def _create(self, key: tuple[str, ...]) -> int:
        if not self.registry.admit():
            return -1
        if self.size == self.capacity:
            self._grow(self.capacity * 2)
        slot = self.size
        self.size += 1
        self.index[key] = slot
        self.keys.append(key)
        self.fresh[slot] = True
        self._reset(slot)
        return slot

    def _reset(self, slot: int) -> None:
        raise NotImplementedError

    def purge(self, cutoff: float) -> int:
        """Drop series not updated since ``cutoff`` (unix seconds); returns how many."""
        keep = np.flatnonzero(self.updated[: self.size] >= cutoff)
        removed = self.size - len(keep)
        if removed == 0:
            return 0
        for k in self.series_arrays:
            v = getattr(self, k)
            setattr(self, k, v[keep].copy() if len(keep) else v[:16].copy())
        self.keys = [self.keys[i] for i in keep.tolist()]
        self.index = {key: i for i, key in enumerate(self.keys)}
        self.size = len(keep)
        if self.capacity < 16:
            self._grow(16)
        return removed

    def render(self, out: list[str], openmetrics: bool) -> None:
        raise NotImplementedError

    def collect(
        self, out: list[TimeSeries], now_ms: int, extra: Labels, exemplars_since: int
    ) -> None:
        raise NotImplementedError

    def _series_labels(self, slot: int, extra: Labels) -> list[tuple[str, str]]:
        """The series' labels without ``__name__``; empty values are left out (as Prometheus'
        label builder does), so ``connection_type=""`` is simply absent."""
        labels = list(extra)
        labels.extend((n, v) for n, v in zip(self.label_names, self.keys[slot], strict=True) if v)
        return labels


class Counter(_Family):
    kind = "counter"
    series_arrays = (*_Family.series_arrays, "values")

    def _alloc(self, capacity: int) -> None:
        super()._alloc(capacity)
        self.values = np.zeros(capacity, dtype=np.float64)

    def _reset(self, slot: int) -> None:
        self.values[slot] = 0.0

    def add(self, groups: Groups, amounts: np.ndarray, now: float) -> None:
        """Add ``amounts[g]`` to the series of each group ``g``."""
        slots = self.slots(groups.keys, now)
        ok = slots >= 0
        self.values[slots[ok]] += amounts[ok]

    def add_one(self, key: tuple[str, ...], amount: float, now: float) -> None:
        slot = self.slots([key], now)[0]
        if slot >= 0:
            self.values[slot] += amount

    def value(self, key: tuple[str, ...]) -> float:
        slot = self.index.get(key)
        return 0.0 if slot is None else float(self.values[slot])

    def render(self, out: list[str], openmetrics: bool) -> None:
        family = self.name.removesuffix("_total") if openmetrics else self.name
        out.append(f"# HELP {family} {self.help}")
        out.append(f"# TYPE {family} counter")
        for slot in range(self.size):
            labels = _label_text(self.label_names, self.keys[slot])
            out.append(f"{self.name}{labels} {format_value(float(self.values[slot]))}")

    def collect(
        self, out: list[TimeSeries], now_ms: int, extra: Labels, exemplars_since: int
    ) -> None:
        values = self.values.tolist()
        for slot in range(self.size):
            labels = tuple(sorted([*self._series_labels(slot, extra), ("__name__", self.name)]))
            samples: tuple[Sample, ...] = ((values[slot], now_ms),)
            if self.fresh[slot]:
                samples = ((0.0, now_ms - 1), *samples)
            out.append((labels, samples, ()))
        self.fresh[: self.size] = False


class Histogram(_Family):
    kind = "histogram"
    series_arrays = (*_Family.series_arrays, "counts", "sums", "ex_trace", "ex_value", "ex_ts")

    def __init__(
        self,
        registry: Registry,
        name: str,
        help_text: str,
        labels: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self.nb = len(self.bounds) + 1  # with +Inf
        self.le = [format_value(float(b)) for b in self.bounds] + ["+Inf"]
        super().__init__(registry, name, help_text, labels)

    def _alloc(self, capacity: int) -> None:
        super()._alloc(capacity)
        self.counts = np.zeros((capacity, self.nb), dtype=np.int64)  # per bucket, not cumulative
        self.sums = np.zeros(capacity, dtype=np.float64)
        self.ex_trace = np.zeros((capacity, self.nb, 16), dtype=np.uint8)
        self.ex_value = np.zeros((capacity, self.nb), dtype=np.float64)
        self.ex_ts = np.zeros((capacity, self.nb), dtype=np.int64)  # unix ms, 0: none

    def _reset(self, slot: int) -> None:
        self.counts[slot] = 0
        self.sums[slot] = 0.0
        self.ex_trace[slot] = 0
        self.ex_value[slot] = 0.0
        self.ex_ts[slot] = 0

    def observe(
        self,
        groups: Groups,
        values: np.ndarray,
        trace_ids: np.ndarray | None,
        now: float,
    ) -> None:
        """Observe ``values[row]`` into the series of the row's group; the last row of each
        (series, bucket) becomes that bucket's exemplar (``trace_ids``: (n, 16) uint8)."""
        n = len(values)
        if n == 0:
            return
        slots = self.slots(groups.keys, now)
        g_count = groups.count
        bucket = np.searchsorted(self.bounds, values, side="left")
        cell = groups.gid * self.nb + bucket
        counts = np.bincount(cell, minlength=g_count * self.nb).reshape(g_count, self.nb)
        sums = np.bincount(groups.gid, weights=values, minlength=g_count)
        ok = slots >= 0
        self.counts[slots[ok]] += counts[ok]
        self.sums[slots[ok]] += sums[ok]
        if trace_ids is None:
            return
        last = np.full(g_count * self.nb, -1, dtype=np.int64)
        last[cell] = np.arange(n, dtype=np.int64)  # the last row of a cell wins
        cells = np.flatnonzero(last >= 0)
        rows = last[cells]
        target = slots[cells // self.nb]
        keep = target >= 0
        cells, rows, target = cells[keep], rows[keep], target[keep]
        if len(rows) == 0:
            return
        b = cells % self.nb
        self.ex_trace[target, b] = trace_ids[rows]
        self.ex_value[target, b] = values[rows]
        self.ex_ts[target, b] = max(int(now * 1000), 1)  # 0 means "no exemplar"

    def snapshot(self, key: tuple[str, ...]) -> tuple[list[int], float, int] | None:
        """Cumulative bucket counts, sum and count of one series (tests, debugging)."""
        slot = self.index.get(key)
        if slot is None:
            return None
        cum = np.cumsum(self.counts[slot]).tolist()
        return cum, float(self.sums[slot]), int(cum[-1])

    def render(self, out: list[str], openmetrics: bool) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} histogram")
        names = (*self.label_names, "le")
        for slot in range(self.size):
            key = self.keys[slot]
            cum = np.cumsum(self.counts[slot]).tolist()
            for i, le in enumerate(self.le):
                line = f"{self.name}_bucket{_label_text(names, (*key, le))} {cum[i]}"
                if openmetrics and self.ex_ts[slot, i]:
                    trace = trace_id_hex(self.ex_trace[slot, i].tobytes())
                    line += (
                        f' # {{{TRACE_ID_LABEL}="{trace}"}} '
                        f"{format_value(float(self.ex_value[slot, i]))} "
                        f"{self.ex_ts[slot, i] / 1000:.3f}"
                    )
                out.append(line)
            labels = _label_text(self.label_names, key)
            out.append(f"{self.name}_sum{labels} {format_value(float(self.sums[slot]))}")
            out.append(f"{self.name}_count{labels} {cum[-1]}")

    def collect(
        self, out: list[TimeSeries], now_ms: int, extra: Labels, exemplars_since: int
    ) -> None:
        bucket_name, sum_name, count_name = (self.name + s for s in ("_bucket", "_sum", "_count"))
        for slot in range(self.size):
            fresh = bool(self.fresh[slot])
            base = self._series_labels(slot, extra)
            cum = np.cumsum(self.counts[slot]).tolist()
            for i, le in enumerate(self.le):
                exemplars: tuple[Exemplar, ...] = ()
                ts = int(self.ex_ts[slot, i])
                if ts > exemplars_since:
                    trace = trace_id_hex(self.ex_trace[slot, i].tobytes())
                    exemplars = ((trace, float(self.ex_value[slot, i]), ts),)
                labels = tuple(sorted([*base, ("__name__", bucket_name), ("le", le)]))
                out.append((labels, _samples(float(cum[i]), now_ms, fresh), exemplars))
            labels = tuple(sorted([*base, ("__name__", sum_name)]))
            out.append((labels, _samples(float(self.sums[slot]), now_ms, fresh), ()))
            labels = tuple(sorted([*base, ("__name__", count_name)]))
            out.append((labels, _samples(float(cum[-1]), now_ms, fresh), ()))
        self.fresh[: self.size] = False


def _samples(value: float, now_ms: int, fresh: bool) -> tuple[Sample, ...]:
    if fresh:
        return ((0.0, now_ms - 1), (value, now_ms))
    return ((value, now_ms),)


class Registry:
    """All generated series of one tenant."""

    def __init__(self, max_active_series: int = 0) -> None:
        self.families: list[_Family] = []
        self.max_active_series = max_active_series
        self.refused_series = 0  # new series refused by max_active_series
        self.last_collect_ms = 0

    def counter(self, name: str, help_text: str, labels: Sequence[str]) -> Counter:
        family = Counter(self, name, help_text, labels)
        self.families.append(family)
        return family

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        family = Histogram(self, name, help_text, labels, buckets)
        self.families.append(family)
        return family

    @property
    def active_series(self) -> int:
        return sum(f.size for f in self.families)

    def admit(self) -> bool:
        if self.max_active_series and self.active_series >= self.max_active_series:
            self.refused_series += 1
            return False
        return True

    def purge(self, cutoff: float) -> int:
        return sum(f.purge(cutoff) for f in self.families)

    def render(self, openmetrics: bool = False) -> str:
        out: list[str] = []
        for family in self.families:
            if family.size:
                family.render(out, openmetrics)
        if openmetrics:
            out.append("# EOF")
        return "\n".join(out) + "\n" if out else ""

    def collect(self, now_ms: int, extra: Labels, send_exemplars: bool = True) -> list[TimeSeries]:
        """Every series as remote-write time series at ``now_ms``; exemplars observed since the
        previous collection ride along (when ``send_exemplars``)."""
        since = self.last_collect_ms if send_exemplars else 2**62
        out: list[TimeSeries] = []
        for family in self.families:
            family.collect(out, now_ms, extra, since)
        self.last_collect_ms = now_ms
        return out

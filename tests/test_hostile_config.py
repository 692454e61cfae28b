"""Hostile input, property-based: ``load_config`` on any YAML file.

Documents are drawn over the real key tree (read from the pydantic models, so every section and
key is reached) with hostile values (NaN and infinite durations, huge or negative sizes, wrong
types, nested lists), then also damaged as text, and drawn as raw text. Whatever the file,
``load_config`` answers a ``Config`` or a ``ConfigError``, within bounded time.

"""

from __future__ import annotations

import time
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from threadline.config import Config, ConfigError, load_config

HOSTILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_SCALARS = st.sampled_from(
    [None, True, 0, -1, 1, 65536, 2**63, 1.5, -0.0, float("nan"), float("inf"), "", "x", "5s",
     "-5s", "1m30s", "1e400", "1e400s", "nan", "inf", "100MiB", "1e400MiB", "-1MiB", "99999TB",
     "0.5", "1ms2", "a,b", "http://h:1", "*", "\u00e9", "..", "/"]
)  # fmt: skip


def _model(annotation: Any) -> type[BaseModel] | None:
    """The config section class an annotation names, if any (also inside ``X | None``)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _values(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[Any]:
    fields = {name: (_model(f.annotation), f.annotation) for name, f in model.model_fields.items()}
    keys = st.sampled_from(sorted(fields)) | st.sampled_from(["unknown", ""])

    def value(name: str) -> st.SearchStrategy[Any]:
        sub = fields.get(name, (None, None))[0]
        plain = (
            _SCALARS
            | st.lists(_SCALARS, max_size=3)
            | st.dictionaries(st.text(max_size=4), _SCALARS, max_size=2)
        )
        if sub is not None and depth < 4:
            return _values(sub, depth + 1) | plain
        return plain

    return st.lists(keys.flatmap(lambda k: st.tuples(st.just(k), value(k))), max_size=4).map(dict)


def _load(tmp_path: Path, text: str | bytes) -> Any:
    path = tmp_path / "threadline.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    t0 = time.perf_counter()
    try:
        result: Any = load_config(path)
    except ConfigError as e:
        assert str(e)
        result = e
    assert time.perf_counter() - t0 < 5.0
    return result


@HOSTILE
@given(doc=_values(Config))
def test_config_trees_with_hostile_values(tmp_path: Path, doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc)
    got = _load(tmp_path, text)
    if isinstance(got, Config):
        assert got == load_config(None, doc)  # file and flags validate alike


@HOSTILE
@given(
    doc=_values(Config),
    cut=st.integers(0, 10**6),
    junk=st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t\n ")),
)
def test_damaged_config_text(tmp_path: Path, doc: dict[str, Any], cut: int, junk: str) -> None:
    text = yaml.safe_dump(doc)
    i = cut % (len(text) + 1)
    _load(tmp_path, text[:i] + junk + text[i:])
    _load(tmp_path, text[:i])


@HOSTILE
@given(text=st.text(max_size=80))
def test_raw_config_text(tmp_path: Path, text: str) -> None:
    _load(tmp_path, text)


@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe not UTF-8",
        b"distributor: {max_request_bytes: " + b"9" * 400 + b"TB}",
        b"[" * 2000,
        b"ingester: {trace_idle_period: .inf}",
        b"ingester: {trace_idle_period: .nan}",
        b"ingester: {trace_idle_period: 1e400}",
        b"ingester: {trace_idle_period: -5s}",
        b"distributor: {max_request_bytes: -1}",
    ],
)
def test_odd_files_and_values_are_config_errors(tmp_path: Path, text: bytes) -> None:
    """Non-UTF-8 files, a size past a float, nesting past the recursion limit, durations that
    are not finite or negative, negative sizes."""
    assert isinstance(_load(tmp_path, text), ConfigError)

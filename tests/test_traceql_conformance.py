"""Every query of Tempo's TraceQL corpus, classified exactly as Tempo classifies it.

The corpus (``shared/conformance/traceql_test_examples.yaml``, next to the repository) has the
sections ``valid`` (parse and validate), ``parse_fails`` (syntax error), ``validate_fails``
(parses, then a validation error that is not "unsupported") and ``unsupported`` (parses, then
refused as not supported). Parsed queries must also survive ``parse(unparse(tree)) == tree``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from threadline.traceql import (
    TraceQLSyntaxError,
    TraceQLUnsupportedError,
    TraceQLValidationError,
    parse,
    unparse,
    validate,
)

CORPUS = (
    Path(__file__).resolve().parents[2] / "shared" / "conformance" / "traceql_test_examples.yaml"
)
SECTIONS = ("valid", "parse_fails", "validate_fails", "unsupported")


# the corpus comes from outside this project: a plain clone has no ../shared beside it
pytestmark = pytest.mark.skipif(
    not CORPUS.is_file(),
    reason=f"the TraceQL conformance corpus is not at {CORPUS} (../shared/conformance/ beside "
    f"the repository); CI has it",
)


def _load() -> dict[str, list[str]]:
    if not CORPUS.is_file():
        return {}
    with CORPUS.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return {name: list(data.get(name) or []) for name in data}


CORPUS_DATA = _load()


def _cases() -> list[pytest.param]:
    params = []
    seen: Counter[str] = Counter()
    for section in SECTIONS:
        for query in CORPUS_DATA.get(section, []):
            key = f"{section}:{query}"
            seen[key] += 1
            case_id = key if seen[key] == 1 else f"{key}#{seen[key]}"
            params.append(pytest.param(section, query, id=case_id))
    return params


def test_corpus_has_only_known_sections() -> None:
    unknown = set(CORPUS_DATA) - set(SECTIONS) - {"dump"}
    assert not unknown
    assert not CORPUS_DATA.get("dump")
    assert all(CORPUS_DATA[s] for s in SECTIONS)


def _assert_round_trip(query: str) -> None:
    tree = parse(query)
    text = unparse(tree)
    assert parse(text) == tree, f"{query!r} printed as {text!r}"


@pytest.mark.parametrize(("section", "query"), _cases())
def test_corpus(section: str, query: str) -> None:
    if section == "parse_fails":
        with pytest.raises(TraceQLSyntaxError) as info:
            parse(query)
        assert info.value.line > 0
        assert info.value.column > 0
        return

    tree = parse(query)
    if section == "valid":
        validate(tree)
        _assert_round_trip(query)
    elif section == "validate_fails":
        with pytest.raises(TraceQLValidationError) as info:
            validate(tree)
        assert info.value.line > 0
        assert info.value.column > 0
    elif section == "unsupported":
        with pytest.raises(TraceQLUnsupportedError) as info:
            validate(tree)
        assert re.search(r"not (yet )?supported", info.value.message)
        _assert_round_trip(query)
    else:  # pragma: no cover - guarded by test_corpus_has_only_known_sections
        pytest.fail(f"unknown section {section}")

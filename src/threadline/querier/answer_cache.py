"""A bounded LRU of answers that one immutable source gives to one question (blocks never
change, so what a query found in a block can be reused by the next query asking the same)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class AnswerCache:
    """Answers by key (a source's key and the question), at most ``size`` of them."""

    def __init__(self, size: int = 4096) -> None:
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)

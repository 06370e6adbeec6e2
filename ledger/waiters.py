"""What a submitter waits on until the committer hands back its receipt or refusal.

`concurrent.futures.Future` is what `Ledger.submit_future` returns (asyncio can wrap it),
but each one builds a Condition on an RLock: about as much CPU as the rest of a ledger-
authored append's submission. The blocking paths (`submit`, `submit_many`) need only "set
once, wait for it", which a `Waiter` does with one plain lock, and `submit_many` shares one
lock among all its transactions (`Batch`): the caller wakes once, when the last is done.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Sink(Protocol[T_contra]):
    """Where the committer puts one transaction's outcome (a Future or a Waiter)."""

    def set_result(self, result: T_contra) -> None: ...

    def set_exception(self, exception: BaseException | None) -> None: ...

    def done(self) -> bool: ...


class _Unset:
    pass


_UNSET = _Unset()


class Waiter(Generic[T]):
    """One outcome, set once by the committer and awaited by one blocking caller."""

    __slots__ = ("_error", "_lock", "_result")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # released when the outcome is set
        self._result: T | _Unset = _UNSET
        self._error: BaseException | None = None

    def set_result(self, result: T) -> None:
        self._result = result
        self._lock.release()

    def set_exception(self, exception: BaseException | None) -> None:
        self._error = exception or RuntimeError("no outcome")
        self._lock.release()

    def done(self) -> bool:
        return self._error is not None or not isinstance(self._result, _Unset)

    def result(self, timeout: float | None = None) -> T:
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("the ledger did not answer in time")
        self._lock.release()  # let a second result() call return at once
        if self._error is not None:
            raise self._error
        assert not isinstance(self._result, _Unset)
        return self._result


class Batch(Generic[T]):
    """The outcomes of several transactions submitted together: one lock for all of them."""

    __slots__ = ("_left", "_lock", "_mutex", "outcomes")

    def __init__(self, size: int) -> None:
        self.outcomes: list[T | BaseException | _Unset] = [_UNSET] * size
        self._left = size
        self._mutex = threading.Lock()
        self._lock = threading.Lock()
        if size:
            self._lock.acquire()

    def slot(self, position: int) -> Slot[T]:
        return Slot(self, position)

    def _set(self, position: int, outcome: T | BaseException) -> None:
        with self._mutex:
            self.outcomes[position] = outcome
            self._left -= 1
            if self._left == 0:
                self._lock.release()

    def wait(self, timeout: float | None = None) -> list[T | BaseException]:
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("the ledger did not answer in time")
        self._lock.release()
        return [o for o in self.outcomes if not isinstance(o, _Unset)]


class Slot(Generic[T]):
    """One transaction's place in a `Batch`."""

    __slots__ = ("_batch", "_done", "_position")

    def __init__(self, batch: Batch[T], position: int) -> None:
        self._batch = batch
        self._position = position
        self._done = False

    def set_result(self, result: T) -> None:
        self._done = True
        self._batch._set(self._position, result)

    def set_exception(self, exception: BaseException | None) -> None:
        self._done = True
        self._batch._set(self._position, exception or RuntimeError("no outcome"))

    def done(self) -> bool:
        return self._done

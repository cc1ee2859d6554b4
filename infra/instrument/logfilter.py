"""Stamp log records with the execution they belong to, so one execution's logs can be found.

    handler.addFilter(ExecutionLogFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(execution)s %(message)s"))

    def lambda_handler(event, context):
        with ExecutionLogFilter.bind(event):
            ...

The current execution lives in a context variable: it follows the code across `await`, and a new
thread starts without it (use `contextvars.copy_context().run` to hand it over).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from .detail import find_execution_name

NO_EXECUTION = "-"

_current: ContextVar[str] = ContextVar("edobs_execution", default=NO_EXECUTION)


class _Binding:
    """The execution bound by `ExecutionLogFilter.bind`; a context manager that restores it."""

    def __init__(self, execution: str) -> None:
        self.execution = execution
        self._token: Token[str] | None = _current.set(execution)

    def __enter__(self) -> str:
        return self.execution

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.reset()

    def reset(self) -> None:
        """Restore the execution that was bound before (once; later calls do nothing)."""
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


class ExecutionLogFilter(logging.Filter):
    """Sets `record.execution` to the bound execution name, or "-" when there is none.

    A record that already has an `execution` (passed with `extra=`) keeps it. Attach the filter to
    handlers: filters on a logger do not see records propagated from its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "execution"):
            record.execution = _current.get()
        return True

    @classmethod
    def bind(cls, event: dict[str, Any] | str | None) -> _Binding:
        """Bind the execution of `event` (an event, or an execution name) from now on.

        Takes effect at once; used as a context manager it restores the previous one at exit.
        """
        name = event if isinstance(event, str) else find_execution_name(event or {})
        return _Binding(name or NO_EXECUTION)

    @staticmethod
    def current() -> str:
        """The execution name bound now, or "-"."""
        return _current.get()

    @classmethod
    def install(cls, logger: logging.Logger | None = None) -> ExecutionLogFilter:
        """Add one filter to every handler of `logger` (the root logger by default)."""
        log_filter = cls()
        for handler in (logger or logging.getLogger()).handlers:
            handler.addFilter(log_filter)
        return log_filter

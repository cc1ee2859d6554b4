"""edobs instrumentation kit: what producers add so that edobs can follow their work.

Plain Python (boto3 only, imported when an event is sent), safe to ship inside a Lambda.
"""

from .context import CONTEXT_STATE, InvalidDefinition, inject_context, validate_definition
from .detail import (
    ExecutionRef,
    PutEventFailed,
    event_detail,
    events_client,
    find_execution_arn,
    find_execution_name,
    parse_execution_arn,
    put_event,
)
from .logfilter import ExecutionLogFilter

__all__ = [
    "CONTEXT_STATE",
    "ExecutionLogFilter",
    "ExecutionRef",
    "InvalidDefinition",
    "PutEventFailed",
    "event_detail",
    "events_client",
    "find_execution_arn",
    "find_execution_name",
    "inject_context",
    "parse_execution_arn",
    "put_event",
    "validate_definition",
]

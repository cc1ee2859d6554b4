"""Links out to the AWS console for a job and its spans (pure).

edobs needs no AWS permission for these: they are plain console URLs, opened with the reader's own
console session. Every part comes from events, which are hostile: a link is built only from an
ARN that parses as a real Step Functions execution ARN, with a region and a function name of the
shapes AWS allows, and every part is percent-encoded.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import quote

from infra.instrument import parse_execution_arn

# `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-5`.
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# A Lambda function name: letters, digits, `-` and `_`, at most 64 characters.
FUNCTION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARTITION_HOSTS = {"aws": "console.aws.amazon.com", "aws-us-gov": "console.amazonaws-us-gov.com",
                   "aws-cn": "console.amazonaws.cn"}  # fmt: skip
# The Logs Insights query covers the execution's run with this much margin on each side (log
# lines are written a little before the event that says so, clocks differ).
MARGIN = timedelta(minutes=5)


def _execution(arn: object) -> tuple[str, str, str] | None:
    """(partition host, region, execution name) of a real execution ARN, else None."""
    ref = parse_execution_arn(arn)
    if ref is None:
        return None
    parts = ref.arn.split(":")
    host, region, account = PARTITION_HOSTS.get(parts[1]), parts[3], parts[4]
    if host is None or not REGION.match(region) or not re.fullmatch(r"\d{12}", account):
        return None
    return host, region, ref.name


def execution_url(arn: object) -> str | None:
    """The execution's page in the Step Functions console, or None."""
    found = _execution(arn)
    if found is None:
        return None
    host, region, _ = found
    region = quote(region, safe="")
    return (f"https://{region}.{host}/states/home?region={region}"
            f"#/v2/executions/details/{quote(str(arn), safe='')}")  # fmt: skip


def _insights_escape(text: str) -> str:
    """The console's encoding of a text value inside its URL fragment: percent-encoded, then `%`
    written as `*`. Everything but letters, digits, `_`, `.` and `-` is encoded, so a hostile
    value can hold none of the fragment's own marks (`~ ' ( ) *`) nor end the URL."""
    return quote(text, safe="").replace("~", "%7E").replace("%", "*")


def logs_query(execution_name: str) -> str:
    """The Logs Insights query for one execution's lines: the instrument kit stamps the execution
    name (the trace token) on every log line (infra/instrument/logfilter.py)."""
    token = execution_name.replace("\\", "\\\\").replace('"', '\\"')
    return (f'fields @timestamp, @message, @logStream\n| filter @message like "{token}"\n'
            "| sort @timestamp asc\n| limit 1000")  # fmt: skip


def logs_insights_url(arn: object, function: object, start: datetime | None,
                      end: datetime | None) -> str | None:  # fmt: skip
    """A CloudWatch Logs Insights query of `/aws/lambda/<function>` for the execution's trace
    token over its run (with MARGIN; the last day when its start is unknown), or None when the
    ARN or the function name is not real.

    The console keeps the query in the address's fragment as `~(key~value...)` pairs: text values
    start with `'` and are escaped by _insights_escape, numbers are bare, a list is `(~'a~'b)`.
    """
    found = _execution(arn)
    if found is None or not isinstance(function, str) or not FUNCTION.match(function):
        return None
    host, region, name = found
    if start is not None:
        stop = end if end is not None and end >= start else start
        stamp = "%Y-%m-%dT%H:%M:%S.000Z"
        when = (f"end~'{_insights_escape((stop + MARGIN).strftime(stamp))}"
                f"~start~'{_insights_escape((start - MARGIN).strftime(stamp))}"
                "~timeType~'ABSOLUTE~tz~'UTC")  # fmt: skip
    else:
        when = "end~0~start~-86400~timeType~'RELATIVE~unit~'seconds"
    group = _insights_escape(f"/aws/lambda/{function}")
    detail = f"~({when}~editorString~'{_insights_escape(logs_query(name))}~source~(~'{group}))"
    region = quote(region, safe="")
    return (f"https://{region}.{host}/cloudwatch/home?region={region}"
            f"#logsV2:logs-insights$3FqueryDetail$3D{detail}")  # fmt: skip

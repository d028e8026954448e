"""``GET /debug/actors`` and ``GET /debug/threads``: a live runner's actors and threads, for operators.

Both sit behind the API token like every route but /health. /debug/actors never waits on a busy actor for
longer than ``timeout`` (default 1 s): what arrived is shown, the rest is listed as not answering.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon

from actors.introspection import format_thread_stacks, thread_stacks
from actors.service import RunnerService
from api.http_errors import validation_error
from host_runner.ops.stats import HistogramSnapshot

DEFAULT_TIMEOUT = 1.0
MAX_TIMEOUT = 10.0


def jsonable(value: Any) -> Any:
    """Dataclasses and tuples as plain JSON values; histograms as their count and sum (the buckets are in
    /metrics)."""
    if isinstance(value, HistogramSnapshot):
        return {"count": value.count, "sum": round(value.total, 6)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


class DebugActorsResource:
    """Every live actor with what it owns, the supervisor's queue, the reservations and the callback lanes."""

    def __init__(self, service: RunnerService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            timeout = req.get_param_as_float("timeout", min_value=0.0, max_value=MAX_TIMEOUT, default=DEFAULT_TIMEOUT)
        except falcon.HTTPInvalidParam:
            raise validation_error("timeout", f"must be a number of seconds between 0 and {MAX_TIMEOUT:g}") from None
        described = self.service.describe(timeout)
        reports, registry, callbacks = described.reports, described.registry, described.callbacks
        resp.media = jsonable({
            "timeout_seconds": timeout,
            "count": len(reports),
            "not_answering": [{"class": report.actor_class, "urn": report.urn, "problem": report.problem}
                              for report in reports if not report.answered],
            "actors": [report.to_json() for report in reports],
            "supervisor": described.supervisor,
            "reservations": registry["reservations"] if registry is not None else None,
            "callback_lanes": callbacks["lanes"] if callbacks is not None else None,
        })


class DebugThreadsResource:
    """The stack of every thread in the runner process (JSON, or ``?format=text`` like pykka's debug helper)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = req.get_param("format") or "json"
        if form not in ("json", "text"):
            raise validation_error("format", "must be json or text")
        stacks = thread_stacks()
        if form == "text":
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = format_thread_stacks(stacks)
            return
        resp.media = {"count": len(stacks), "threads": stacks}


__all__ = ["DebugActorsResource", "DebugThreadsResource", "jsonable"]

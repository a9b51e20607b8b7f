"""Structured logging: key=value lines for people, JSON lines for log shippers."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(fmt: str = "console", level: str = "info") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(numeric, shared, renderer)


def _route_stdlib_logging(level: int, shared: list[structlog.types.Processor],
                          renderer: structlog.types.Processor) -> None:
    """Libraries log through ``logging`` (APScheduler, uvicorn): give their records the same
    format as ours, so that a JSON log holds nothing but JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # A tick that finds the previous cycle still running is skipped by design (max_instances=1),
    # and APScheduler says so at WARNING each time: during a long cycle, a line a tick.  Its
    # errors (a job that raised) still come through.
    logging.getLogger("apscheduler").setLevel(max(level, logging.ERROR))

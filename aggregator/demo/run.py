"""``aggregator demo``: the whole product on one machine, with no network access.

Serves the sample member feeds on 127.0.0.1, runs one full cycle of the real pipeline (fetch,
parse, tag, cluster, store) into a scratch folder, publishes, and serves the result until
interrupted.  Nothing here is special-cased for the demo except where its files live.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from ..config import Config, load_config
from ..db import make_engine
from ..migrate import upgrade
from ..poller import CycleSummary, Poller, worker_id
from ..publish.publisher import PublishResult, publish
from ..serve import start_background
from . import demo_config, load_stories, member_feeds


@dataclass(frozen=True)
class DemoReady:
    workdir: Path
    river_url: str
    feeds_url: str
    summary: CycleSummary
    published: PublishResult


def run_demo(workdir: Path | None, port: int, on_ready: Callable[[DemoReady], None],
             stop: threading.Event | None = None) -> None:
    """Set everything up, call ``on_ready``, and serve until SIGINT/SIGTERM (or ``stop``)."""
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sindikasi-demo-"))
    feeds_dir, out = work / "member-feeds", work / "output"
    feeds_dir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    data = load_stories()
    feeds_url, stop_feeds = start_background(feeds_dir)
    try:
        for path, body in member_feeds(data, datetime.now(UTC), feeds_url).items():
            (feeds_dir / path).write_bytes(body)
        river_url, stop_river = start_background(out, port=port)
        try:
            config_path = work / "feeds.yaml"
            config_path.write_text(demo_config(feeds_url, river_url, work, data=data),
                                   encoding="utf-8")
            config = load_config(config_path)
            engine = make_engine(config.database_url)
            try:
                upgrade(engine)
                summary = asyncio.run(_one_cycle(config, engine))
                published = publish(engine, config, datetime.now(UTC), owner=worker_id(),
                                    full=True)
            finally:
                engine.dispose()
            on_ready(DemoReady(work, river_url, feeds_url, summary, published))
            _wait(stop or threading.Event())
        finally:
            stop_river()
    finally:
        stop_feeds()


async def _one_cycle(config: Config, engine: Engine) -> CycleSummary:
    async with Poller(config, engine) as poller:
        return await poller.run_cycle(due_only=False)


def _wait(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)
    while not stop.wait(0.5):
        pass

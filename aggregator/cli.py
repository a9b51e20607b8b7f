"""The ``aggregator`` command line.

Exit status: 0 when the command did its job (a poll cycle counts even if some feeds failed),
2 for a wrong config or wrong usage (nothing was written), 1 for anything else that stopped it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError

from . import __version__, logs
from .config import Config, ConfigError, Problem, load_config, parse_config, resolve_path
from .db import feeds as feeds_table
from .db import make_engine
from .files import write_atomic
from .migrate import upgrade
from .opml import OpmlError, member_id_for, parse_opml, render_opml
from .poller import CycleSummary, Poller, worker_id
from .publish.publisher import PublishError, PublishResult, publish, unpublished
from .store import explain_item, feed_table

if TYPE_CHECKING:
    from .metrics import Metrics

log = structlog.get_logger("aggregator")


class UsageError(Exception):
    """A wrong argument: reported like a config problem, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PublishError as exc:
        print(f"error: publish: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"error: database: {exc.__class__.__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aggregator", description=__doc__.splitlines()[0]
                                if __doc__ else None)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", help="config file (default: $AGGREGATOR_CONFIG or feeds.yaml)")
    p.add_argument("--log-format", choices=("console", "json"), default="console")
    p.add_argument("--log-level", default="warning",
                   choices=("debug", "info", "warning", "error"))
    sub = p.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="poll feeds on schedule until stopped")
    run.add_argument("--once", action="store_true", help="one full cycle of every feed, then exit")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true",
                     help="with --once: print the cycle's summary as JSON")
    run.add_argument("--metrics-port", type=_port, metavar="PORT",
                     help="serve Prometheus metrics on /metrics and a health check on /healthz "
                          "(0 picks a free port; the address is logged)")
    run.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                     help="address for --metrics-port (default: %(default)s)")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate the config file and exit")
    check.set_defaults(func=cmd_check_config)

    feeds = sub.add_parser("feeds", help="the state of every feed")
    feeds.add_argument("--json", action="store_true", help="print a JSON array")
    feeds.add_argument("--failing", action="store_true",
                       help="only feeds that need a member's attention")
    feeds.set_defaults(func=cmd_feeds)

    enable = sub.add_parser("enable-feed", help="re-enable a feed disabled by HTTP 410")
    enable.add_argument("url", help="the feed URL as written in the config")
    enable.set_defaults(func=cmd_enable_feed)

    imp = sub.add_parser("import-opml", help="add the feeds of an OPML file to the config")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="print what would be added")
    imp.set_defaults(func=cmd_import_opml)

    explain = sub.add_parser("explain", help="an item's regions and cluster, with the evidence")
    explain.add_argument("item", help="the item's URL (any form of it) or its numeric id")
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.set_defaults(func=cmd_explain)

    exp = sub.add_parser("export-opml", help="print the members' feeds as OPML")
    exp.add_argument("-o", "--output", help="write to this file instead of standard output")
    exp.set_defaults(func=cmd_export_opml)

    pub = sub.add_parser("publish", help="rewrite every published file from the store")
    pub.add_argument("--json", action="store_true", help="print what was written as JSON")
    pub.set_defaults(func=cmd_publish)

    serve = sub.add_parser("serve", help="serve the published files over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--dir", help="folder to serve (default: output_dir of the config)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="sample member feeds on 127.0.0.1, one cycle, the result "
                                        "served: the whole product without network access")
    demo.add_argument("--port", type=int, default=8080, help="port of the river of news "
                                                            "(0 picks a free one)")
    demo.add_argument("--dir", help="keep the demo's files here (default: a new temporary folder)")
    demo.set_defaults(func=cmd_demo)

    mig = sub.add_parser("migrate-db", help="copy the whole store into another (empty) database, "
                                            "e.g. from SQLite to PostgreSQL")
    mig.add_argument("--to", required=True, metavar="URL",
                     help="target, e.g. postgresql+psycopg://user@host/db")
    mig.set_defaults(func=cmd_migrate_db)

    lines = sub.add_parser("sitemap-lines",
                           help="the robots.txt line each member adds for its news sitemap")
    lines.set_defaults(func=cmd_sitemap_lines)
    return p


def _config(args: argparse.Namespace) -> Config:
    return load_config(resolve_path(args.config))


def _engine(config: Config) -> Engine:
    engine = make_engine(config.database_url)
    upgrade(engine)
    return engine


# ---------------------------------------------------------------------------------------- run
def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = _engine(config)
    try:
        with contextlib.ExitStack() as stack:
            metrics = _serve_metrics(args, config, stack)
            return _run(args, config, engine, metrics)
    finally:
        engine.dispose()


def _serve_metrics(args: argparse.Namespace, config: Config,
                   stack: contextlib.ExitStack) -> Metrics | None:
    """Start the metrics endpoint before polling, so that a taken port fails the run at once."""
    if args.metrics_port is None:
        return None
    from .metrics import Metrics, MetricsServer, read_engine

    reader = read_engine(config.database_url)
    stack.callback(reader.dispose)
    metrics = Metrics(config, reader)
    server = stack.enter_context(MetricsServer(metrics, args.metrics_host, args.metrics_port))
    log.warning("serving metrics", metrics=f"{server.url}metrics", health=f"{server.url}healthz")
    return metrics


def _run(args: argparse.Namespace, config: Config, engine: Engine,
         metrics: Metrics | None) -> int:
    try:
        return _run_until_stopped(args, config, engine, metrics)
    except asyncio.CancelledError:  # signalled twice (see _install_signals)
        log.warning("stopped at once")
        return 130


def _run_until_stopped(args: argparse.Namespace, config: Config, engine: Engine,
                       metrics: Metrics | None) -> int:
    if args.once:
        summary = asyncio.run(_run_once(config, engine, show_progress=not args.no_progress,
                                        metrics=metrics))
        published = _publish_after(config, engine, summary, metrics=metrics)
        if metrics:
            metrics.cycle_finished(summary.duration_s)
        if args.json:
            print(json.dumps({**summary.as_dict(),
                              "published": published.as_dict() if published else None}))
        else:
            _print_summary(summary)
            if published is not None:
                _print_published(published)
        return 0
    asyncio.run(_run_forever(config, engine, metrics))
    return 0


async def _run_once(config: Config, engine: Engine, show_progress: bool,
                    metrics: Metrics | None = None) -> CycleSummary:
    progress, finish = _progress_bar(show_progress and sys.stderr.isatty())
    try:
        async with Poller(config, engine, progress=progress, metrics=metrics) as poller:
            _install_signals(poller.stop)
            return await poller.run_cycle(due_only=False)
    finally:
        finish()


async def _run_forever(config: Config, engine: Engine, metrics: Metrics | None = None) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    stopped = asyncio.Event()
    busy = asyncio.Lock()
    last_publish = [float("-inf")]
    # A publish this process needed but could not do (another worker held the publish lease,
    # or the output could not be written) is owed: the next tick does it, changes or not.
    owed = [False]
    async with Poller(config, engine, metrics=metrics) as poller:

        async def tick() -> None:
            # Stopped at once (signalled twice): said already, not APScheduler's error to log.
            with contextlib.suppress(asyncio.CancelledError):
                await cycle()

        async def cycle() -> None:
            if stopped.is_set():
                return
            async with busy:
                if stopped.is_set():  # waited for the lock while the run was stopping
                    return
                summary = await poller.run_cycle(due_only=True)
                # Sitemaps drop articles as they age, so publish at least hourly as well.
                stale = asyncio.get_running_loop().time() - last_publish[0] > 3600
                try:
                    result = await asyncio.to_thread(_publish_after, config, engine, summary,
                                                     stale or owed[0], metrics)
                    if result is not None:
                        owed[0] = result.skipped is not None
                        if result.skipped is None:
                            last_publish[0] = asyncio.get_running_loop().time()
                except PublishError as exc:  # the next cycle tries again
                    owed[0] = True
                    log.error("publish failed", error=str(exc))
                if metrics:
                    metrics.cycle_finished(summary.duration_s)
            if summary.feeds:
                log.warning("cycle finished", **summary.as_dict())

        def stop() -> None:
            poller.stop()
            stopped.set()

        _install_signals(stop)
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(tick, "interval", seconds=config.schedule.tick_seconds,
                          next_run_time=datetime.now(UTC), max_instances=1, coalesce=True,
                          misfire_grace_time=None, id="poll")
        scheduler.start()
        log.warning("polling on schedule", feeds=sum(len(m.feeds) for m in config.members),
                    tick_seconds=config.schedule.tick_seconds)
        await stopped.wait()
        # The cycle in progress finishes its feeds in flight and claims no more; only then may
        # the scheduler go, as its shutdown cancels the job it is running: feeds fetched but
        # never stored, their leases left to expire.
        scheduler.pause()
        async with busy:
            pass
        scheduler.shutdown(wait=False)
    log.warning("stopped")


def _publish_after(config: Config, engine: Engine, summary: CycleSummary,
                   force: bool = False, metrics: Metrics | None = None) -> PublishResult | None:
    """Publish when the cycle changed something, when nothing was ever published, or when the
    store holds changes no publish finished (a run killed after storing, a full disk)."""
    if not (force or summary.new_items or summary.updated_items
            or not (config.output_path / "feed.xml").exists() or unpublished(engine)):
        return None
    try:
        result = publish(engine, config, datetime.now(UTC), owner=worker_id())
    except Exception:
        if metrics:
            metrics.publish_failed()
        raise
    if metrics:
        metrics.published(result)
    return result


def _print_published(r: PublishResult) -> None:
    if r.skipped:
        print(f"publish: skipped ({r.skipped})")
        return
    print(f"publish: {len(r.written)} of {r.rendered} files written"
          f"{f', {len(r.deleted)} removed' if r.deleted else ''}"
          f"{f', {r.announced} announced to the hub' if r.announced else ''}; "
          f"{r.duration_s:.2f} s")


def _install_signals(stop: Callable[[], None]) -> None:
    """The first SIGINT/SIGTERM stops gently (``stop``: the feeds in flight are stored), a
    second one at once: the running task is cancelled and the feeds in flight are dropped,
    their fetches lost but nothing stored; their leases are freed by the next start on this
    host (a dead owner's), or run out."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    signalled = [False]

    def on_signal() -> None:
        if not signalled[0]:
            signalled[0] = True
            log.warning("stopping: finishing the feeds in flight; signal again to stop at once")
            stop()
        elif task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


def _progress_bar(enabled: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if not enabled:
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                   console=_stderr_console())
    task = bar.add_task("polling feeds", total=None)
    bar.start()

    def update_bar(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update_bar, bar.stop


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr)


def _print_summary(s: CycleSummary) -> None:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items()))
    print(f"cycle: {s.feeds} feeds: {s.ok} ok, {s.not_modified} not modified, {s.failed} failed"
          f"{f' ({errors})' if errors else ''}"
          f"{f', {s.deferred} deferred' if s.deferred else ''}; "
          f"{s.new_items} new items, {s.updated_items} updated; {s.duration_s:.2f} s")


# ------------------------------------------------------------------------------------ publish
def cmd_publish(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = _engine(config)
    try:
        result = publish(engine, config, datetime.now(UTC), owner=worker_id(), full=True)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({**result.as_dict(), "files": sorted(result.written)}))
    else:
        _print_published(result)
    return 1 if result.skipped else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import ServeError, serve

    directory = Path(args.dir) if args.dir else _config(args).output_path
    try:
        serve(directory, args.host, args.port,
              on_ready=lambda url: print(f"serving {directory} on {url}", flush=True))
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import DemoReady, run_demo
    from .serve import ServeError

    def ready(d: DemoReady) -> None:
        _print_summary(d.summary)
        _print_published(d.published)
        print(f"demo files in {d.workdir} (config: {d.workdir / 'feeds.yaml'})")
        print(f"sample member feeds on {d.feeds_url}")
        print(f"river of news on {d.river_url}  (Ctrl-C to stop)", flush=True)

    try:
        run_demo(Path(args.dir) if args.dir else None, args.port, ready)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_migrate_db(args: argparse.Namespace) -> int:
    from .copydb import CopyError, copy_store

    config = _config(args)
    try:
        config.storage.__class__(url=args.to)
    except ValueError as exc:
        raise UsageError(f"--to: {_first_line(exc)}") from None
    source, target = make_engine(config.database_url), make_engine(args.to)
    try:
        result = copy_store(source, target)
    except CopyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        source.dispose()
        target.dispose()
    for name, count in result.rows.items():
        print(f"{name}: {count} rows")
    print(f"copied; now set storage.url in {config.source or 'feeds.yaml'} to the new database "
          "(the old one is left as it was)")
    return 0


def cmd_sitemap_lines(args: argparse.Namespace) -> int:
    from .publish.sitemaps import sitemap_lines
    from .publish.snapshot import site_of, sources_of

    config = _config(args)
    for line in sitemap_lines(site_of(config), list(sources_of(config).values())):
        print(line)
    return 0


# -------------------------------------------------------------------------------- check-config
def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    count = sum(len(m.feeds) for m in config.members)
    print(f"{config.source}: ok: {len(config.members)} members, {count} feeds")
    return 0


# --------------------------------------------------------------------------------------- feeds
def feed_rows(config: Config, engine: Engine, now: datetime) -> list[dict[str, Any]]:
    failing_after = timedelta(seconds=config.schedule.failing_after)
    rows = []
    for r in feed_table(engine):
        if r["disabled_reason"]:
            state = "disabled"
        elif r["failing_since"] and now - r["failing_since"] >= failing_after:
            state = "failing"
        elif r["consecutive_errors"]:
            state = "error"
        elif r["last_success_at"] is None:
            state = "new"
        else:
            state = "ok"
        rows.append({
            "member": r["member_id"],
            "member_name": r["member_name"],
            "url": r["url"],
            "config_url": r["config_url"],
            "state": state,
            "last_success": _iso(r["last_success_at"]),
            "items": r["items_total"],
            "consecutive_errors": r["consecutive_errors"],
            "last_error": r["last_error"],
            "error_kind": r["last_error_kind"],
            "failing_since": _iso(r["failing_since"]),
            "next_poll": None if r["disabled_reason"] else _iso(r["next_poll_at"]),
            "last_status": r["last_status"],
        })
    return rows


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def cmd_feeds(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = _engine(config)
    try:
        rows = feed_rows(config, engine, datetime.now(UTC))
    finally:
        engine.dispose()
    if args.failing:
        rows = [r for r in rows if r["state"] in ("failing", "disabled")]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    tz = ZoneInfo(config.association.timezone)
    table = Table(title=f"{len(rows)} feeds", title_justify="left")
    for column in ("member", "feed", "state", "last success", "items", "errors", "last error",
                   "failing since", "next poll"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["member"], r["url"], r["state"], _local(r["last_success"], tz),
                      str(r["items"]), str(r["consecutive_errors"]),
                      (r["last_error"] or "")[:120], _local(r["failing_since"], tz),
                      _local(r["next_poll"], tz) if r["next_poll"] else "never (disabled)")
    Console(width=max(120, Console().width)).print(table)
    return 0


def _local(iso: str | None, tz: ZoneInfo) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def cmd_enable_feed(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = _engine(config)
    try:
        with engine.begin() as conn:
            found = conn.execute(
                update(feeds_table)
                .where((feeds_table.c.config_url == args.url) | (feeds_table.c.url == args.url))
                .values(disabled_reason=None, consecutive_errors=0, failing_since=None,
                        next_poll_at=datetime.now(UTC))
            ).rowcount
    finally:
        engine.dispose()
    if not found:
        raise UsageError(f"no feed {args.url} in the database (run `aggregator run --once` first)")
    print(f"enabled {args.url}")
    return 0


# ---------------------------------------------------------------------------------------- OPML
def cmd_export_opml(args: argparse.Namespace) -> int:
    config = _config(args)
    data = render_opml(config, datetime.now(UTC))
    if args.output:
        write_atomic(Path(args.output), data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def cmd_import_opml(args: argparse.Namespace) -> int:
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    path = Path(resolve_path(args.config))
    config = load_config(path)
    try:
        outlines = parse_opml(Path(args.file).read_bytes())
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    except OpmlError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    known = {url for m in config.members for url in m.feeds}
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 200
    # Keep the file's own sequence indentation; ruamel's default would re-indent every member.
    doc, indent, dash = load_yaml_guess_indent(path.read_text(encoding="utf-8"), yaml=yaml)
    if indent is not None and dash is not None:
        yaml.indent(mapping=2, sequence=indent, offset=dash)
    by_member = {m["id"]: m for m in doc["members"]}
    # One member per site: matched by host, not by the id guessed from it (two hosts may share
    # a first label, and a taken id gets a suffix).
    by_site = {_site_key(str(m["site"])): m for m in doc["members"]}
    added = []
    for o in outlines:
        if o.xml_url in known:
            continue
        site = o.html_url or _origin(o.xml_url)
        entry = by_site.get(_site_key(site))
        if entry is not None:
            entry["feeds"].append(o.xml_url)  # another feed of a site already listed
        else:
            mid = base = member_id_for(site)
            n = 2
            while mid in by_member:
                mid, n = f"{base}-{n}", n + 1
            entry = {"id": mid, "name": o.title or mid, "site": site, "feeds": [o.xml_url]}
            if o.category:
                entry["region"] = o.category
            doc["members"].append(entry)
            by_member[mid] = entry
            by_site[_site_key(site)] = entry
        known.add(o.xml_url)
        added.append((str(entry["id"]), o.xml_url))
    if not added:
        print("nothing to add: every feed is already in the config")
        return 0
    import io

    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    text = buffer.getvalue()
    try:
        parse_config(text, str(path))  # never write a config that would not load
    except ConfigError as exc:
        raise ConfigError([Problem(args.file, None, "", f"cannot import: {p.message}")
                           for p in exc.problems]) from None
    if not args.dry_run:
        write_atomic(path, text.encode("utf-8"))
    for mid, url in added:
        print(f"{'would add' if args.dry_run else 'added'} {mid}: {url}")
    return 0


def _site_key(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or url).removeprefix("www.")


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


# ------------------------------------------------------------------------------------- explain
def cmd_explain(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = _engine(config)
    try:
        found = explain_item(engine, args.item)
    finally:
        engine.dispose()
    if found is None:
        raise UsageError(f"no stored item matches {args.item!r}")
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
        return 0
    tz = ZoneInfo(config.association.timezone)
    item = found["item"]
    print(f"item {item['id']}: {item['title']}")
    print(f"  member {item['member']}, published {_local(item['published_at'], tz)}")
    print(f"  {item['url']}")
    print("regions:")
    for r in found["regions"] or [{"code": "-", "name": "none", "confidence": 0, "evidence": []}]:
        print(f"  {r['name']} ({r['code']}), confidence {r['confidence']:.2f}")
        for ev in r["evidence"]:
            print(f"    - {ev}")
    c = found["cluster"]
    if c is None:
        print("cluster: none (not clustered yet)")
        return 0
    print(f"cluster {c['id']}: {c['size']} copies; representative item {c['representative_id']}")
    print(f"  why this item is here: {item['cluster_reason']}")
    for m in c["members"]:
        mark = "*" if m["id"] == c["representative_id"] else " "
        print(f"  {mark} item {m['id']} {m['member']:<16} {_local(m['published_at'], tz)}  "
              f"{m['url']}")
        print(f"      {m['cluster_reason']}")
    return 0


"""Load and validate ``feeds.yaml``.

A wrong config must be rejected before anything runs, with one message per problem that names the
file, line and key, so that a member's editor can fix all of them in one pass.  PyYAML keeps line
numbers only on its node tree, so we compose the tree once, validate the plain data with pydantic,
and map each pydantic error location back to the node it came from.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG = "feeds.yaml"
CONFIG_ENV = "AGGREGATOR_CONFIG"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found, never just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    if any(c.isspace() for c in value):
        raise ValueError(f"URL contains whitespace: {value!r}")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Association(_Strict):
    name: str = Field(min_length=1)
    base_url: HttpUrl
    language: str = Field(default="id", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    timezone: str = "Asia/Jakarta"
    contact_url: HttpUrl | None = None

    @field_validator("base_url")
    @classmethod
    def _slash(cls, value: str) -> str:
        # Links are built by joining onto base_url; without the slash the last segment is lost.
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class Storage(_Strict):
    url: str = "sqlite:///var/aggregator.db"

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value


class Timeouts(_Strict):
    connect: float = Field(default=10.0, gt=0)
    read: float = Field(default=20.0, gt=0)
    write: float = Field(default=10.0, gt=0)
    pool: float = Field(default=30.0, gt=0)


class Fetch(_Strict):
    allow_private_networks: bool = False
    concurrency: int = Field(default=16, ge=1, le=1024)
    per_host: int = Field(default=4, ge=1, le=64)
    timeout: Timeouts = Timeouts()
    deadline: float = Field(default=60.0, gt=0, description="overall seconds per fetch")
    max_body_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str | None = None
    parse_workers: int | None = Field(default=None, ge=0, le=64)
    max_items_per_feed: int = Field(default=500, ge=1, le=100_000,
                                    description="a feed listing more keeps only its newest")


class Schedule(_Strict):
    tick_seconds: float = Field(default=20.0, gt=0)
    min_interval: int = Field(default=300, ge=1)
    max_interval: int = Field(default=86400, ge=1)
    max_backoff: int = Field(default=86400, ge=1)
    failing_after: int = Field(default=2 * 86400, ge=0, description="flag a feed failing this long")
    lease_seconds: int = Field(default=600, ge=10)
    max_future_skew: int = Field(default=3600, ge=0, description="clamp item times beyond this")

    @model_validator(mode="after")
    def _bounds(self) -> Schedule:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval must not exceed max_interval")
        return self


class Cluster(_Strict):
    window_hours: float = Field(default=72.0, gt=0, le=24 * 30,
                                description="only items published this close are compared")


class Publish(_Strict):
    max_items: int = Field(default=200, ge=1, le=10_000,
                           description="entries per published feed")
    websub_hub: HttpUrl | None = None
    sitemap_hours: float = Field(default=48.0, gt=0, le=24 * 7,
                                 description="Google News sitemaps list this many recent hours")


class Member(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str = Field(min_length=1)
    # The name Google News knows the outlet by, when it differs from the display name.
    publication: str | None = Field(default=None, min_length=1)
    site: HttpUrl
    feeds: list[HttpUrl] = Field(min_length=1)
    region: str | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class Config(_Strict):
    association: Association
    storage: Storage = Storage()
    output_dir: str = "output"
    fetch: Fetch = Fetch()
    schedule: Schedule = Schedule()
    cluster: Cluster = Cluster()
    publish: Publish = Publish()
    members: list[Member] = Field(min_length=1)

    # Set by load_config: relative paths in the file are relative to the file, not to the cwd.
    source: str = ""

    @property
    def base_dir(self) -> Path:
        return Path(self.source).resolve().parent if self.source else Path.cwd()

    @property
    def output_path(self) -> Path:
        return self.base_dir / self.output_dir

    @property
    def database_url(self) -> str:
        """The storage URL with a relative SQLite path anchored at the config file's folder."""
        url = self.storage.url
        match = re.match(r"^sqlite(\+\w+)?:///(?!/)", url)  # sqlite+pysqlite:/// alike
        if match:
            prefix, rest = match.group(0), url[match.end():]
            if rest and rest != ":memory:" and not rest.startswith("file:"):
                return prefix + str(self.base_dir / rest)
        return url

    def member_language(self, member: Member) -> str:
        return member.language or self.association.language


def resolve_path(explicit: str | None) -> str:
    return explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, parse and validate a config file, raising ConfigError listing every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(name, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read: {exc}")]) from None
    return parse_config(text, name)


# libyaml's loader where PyYAML was built with it: the pure-Python one took most of a second
# for a thousand members, at every start.  Both are safe loaders.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> tuple[yaml.Node | None, type[yaml.SafeLoader]]:
    """The document's node tree, and the loader that read it."""
    try:
        return yaml.compose(text, Loader=_LOADER), _LOADER
    except yaml.YAMLError:
        # Found again by the pure-Python parser, whose messages say more ("mapping values are
        # not allowed here" rather than "... in this context").
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.SafeLoader


def parse_config(text: str, name: str = DEFAULT_CONFIG) -> Config:
    try:
        node, loader = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(name, line, "", f"YAML syntax error: {problem}")]) from None
    if node is None:
        raise ConfigError([Problem(name, 1, "", "the file is empty")])
    problems = _duplicate_keys(node, name, ())
    data = yaml.load(text, Loader=loader)  # a safe loader
    if not isinstance(data, dict):
        raise ConfigError([Problem(name, node.start_mark.line + 1, "", "must be a mapping")])
    if "source" in data:  # set by the loader, not a key of the file
        problems.append(Problem(name, _line_of(node, ("source",)), "source", "unknown key"))
    # Checked on the raw data so that they are reported along with every other problem.
    problems += _duplicate_members(data, node, name)
    config: Config | None = None
    try:
        config = Config.model_validate({**data, "source": name})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(
                Problem(name, _line_of(node, loc), _dotted(loc), _message(err["msg"], err["type"]))
            )
    if problems or config is None:
        raise ConfigError(sorted(problems, key=lambda p: p.line or 0))
    return config


def _message(msg: str, kind: str) -> str:
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    return msg.removeprefix("Value error, ")


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The line of the deepest node on the path; for a missing key, its parent mapping's line."""
    current = node
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == part:
                    # An unknown key is best reported at the key itself.
                    nxt = value_node if part != loc[-1] else key_node
                    break
        elif (isinstance(current, yaml.SequenceNode) and isinstance(part, int)
              and 0 <= part < len(current.value)):
            nxt = current.value[part]
        if nxt is None:
            break
        current = nxt
    return int(current.start_mark.line) + 1


def _duplicate_keys(node: yaml.Node, name: str, path: tuple[Any, ...]) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; a config editor must hear about it."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    Problem(name, key_node.start_mark.line + 1, _dotted((*path, key)),
                            "duplicate key")
                )
            seen.add(key)
            problems += _duplicate_keys(value_node, name, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            problems += _duplicate_keys(child, name, (*path, i))
    return problems


def _duplicate_members(data: dict[Any, Any], node: yaml.Node, name: str) -> list[Problem]:
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    seen_feeds: dict[str, str] = {}
    members = data.get("members")
    for i, member in enumerate(members if isinstance(members, list) else []):
        if not isinstance(member, dict):
            continue
        mid = member.get("id")
        if isinstance(mid, str) and mid in seen_ids:
            first = seen_ids[mid]
            problems.append(
                Problem(name, _line_of(node, ("members", i, "id")), f"members[{i}].id",
                        f"duplicate member id {mid!r} (first at members[{first}])")
            )
        if isinstance(mid, str):
            seen_ids.setdefault(mid, i)
        feeds = member.get("feeds")
        for j, url in enumerate(feeds if isinstance(feeds, list) else []):
            if not isinstance(url, str):
                continue
            if url in seen_feeds:
                problems.append(
                    Problem(name, _line_of(node, ("members", i, "feeds", j)),
                            f"members[{i}].feeds[{j}]",
                            f"feed {url} is already listed for member {seen_feeds[url]!r}")
                )
            seen_feeds.setdefault(url, str(mid) if mid is not None else f"members[{i}]")
    return problems

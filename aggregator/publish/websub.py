"""Tell a WebSub hub which feeds changed, so that subscribers get them without polling.

The hub is the association's own choice (feeds.yaml ``publish.websub_hub``), so it is not held to
the private-address guard that protects the fetcher from members' URLs.  A hub that fails is
logged and otherwise ignored: the files are published either way, readers still poll.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import structlog

log = structlog.get_logger("aggregator.websub")

# Hubs take several hub.url values in one publish request; keep each request modest.
BATCH = 50


def announce(hub: str, urls: Sequence[str], *, timeout: float = 10.0,
             user_agent: str = "Sindikasi") -> int:
    """POST ``hub.mode=publish`` for ``urls``; returns how many the hub accepted (2xx)."""
    accepted = 0
    with httpx.Client(timeout=timeout, headers={"User-Agent": user_agent},
                      follow_redirects=False) as client:
        for start in range(0, len(urls), BATCH):
            batch = list(urls[start:start + BATCH])
            form: dict[str, str | list[str]] = {"hub.mode": "publish", "hub.url": batch}
            try:
                response = client.post(hub, data=form)
            except httpx.HTTPError as exc:
                log.warning("websub hub unreachable", hub=hub, error=str(exc) or type(exc).__name__)
                continue
            if response.is_success:
                accepted += len(batch)
            else:
                log.warning("websub hub refused", hub=hub, status=response.status_code,
                            body=response.text[:200])
    return accepted

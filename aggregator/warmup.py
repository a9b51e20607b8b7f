"""Imported once by the forkserver that parse workers are forked from (see ``Poller``).

Started cold, every parse worker spent about a second importing the pipeline's modules and
loading the gazetteer before its first feed, and a cycle starts several of them; the first
signature each computed imported datasketch (and scipy with it): a second and a half more, on a
loaded machine, per worker.  Forked from a server that did it once, they start with all of it in
memory.
"""

from __future__ import annotations

from . import cli  # noqa: F401  (the console script's main module: workers re-import it)
from .gazetteer import load
from .poller import parse_and_normalize  # noqa: F401
from .similarity import warm_up

load()
warm_up()

"""Publishing: what the store holds, rendered as feeds, sitemaps, OPML and HTML pages.

``model`` is the data every renderer reads; ``snapshot`` reads it from the store (I/O);
``feeds``, ``sitemaps``, ``html`` and ``sources`` render it (pure); ``publisher`` writes the files
and ``websub`` announces them (I/O).
"""

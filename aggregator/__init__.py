"""Sindikasi: a news syndication aggregator for associations of online news outlets."""

__version__ = "0.1.0"

"""VSearch: local photo search by meaning."""

__version__ = "0.1.0"

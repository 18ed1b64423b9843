"""digest: a self-hostable service that emails researchers a daily digest of new papers."""

__version__ = "0.1.0"

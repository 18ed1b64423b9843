"""The web app: sign-up with a keyword profile, double opt-in, self-service through
signed links, a JSON API and an admin API. Build it with `create_app(settings, engine)`."""

from digest.web.app import create_app

__all__ = ["create_app"]

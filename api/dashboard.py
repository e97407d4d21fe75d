"""The browser dashboard: one page and its static files, served by the API, no build step.

The page is a client of the REST API and the broadcaster like any other (docs/events.md);
this module only tells it where the broadcaster is and fences it in with a strict CSP.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request

blp = Blueprint("dashboard", __name__)


@blp.route("/")
def page() -> Response:
    """Serve the dashboard, pointed at the broadcaster."""
    broadcaster = broadcaster_url()
    response = Response(render_template("dashboard.html", broadcaster_url=broadcaster))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(broadcaster))
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {origin}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    if not current_app.config.get("DESKS_PUBLIC_BROADCASTER_URL"):
        response.headers["Vary"] = "Host"  # the broadcaster's address is the page's host's
    return response


def broadcaster_url() -> str:
    """Return DESKS_PUBLIC_BROADCASTER_URL, else the page's own host on the broadcaster port."""
    configured: str | None = current_app.config.get("DESKS_PUBLIC_BROADCASTER_URL")
    if configured:
        return configured
    port = int(current_app.config["DESKS_BROADCASTER_PORT"])
    host = urlsplit(f"//{request.host}").hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    scheme = "wss" if request.scheme == "https" else "ws"
    return f"{scheme}://{host}:{port}/"

"""The admin dashboard: static files only (HTML, CSS, ES modules), served by the API.

The API mounts ``STATIC_DIR`` at ``/static`` and answers ``GET /`` with ``INDEX_HTML``; the page talks
to the API only (``docs/api-contract.md``) and needs nothing from the network.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR: Path = Path(__file__).parent / "static"
INDEX_HTML: Path = STATIC_DIR / "index.html"

__all__ = ["INDEX_HTML", "STATIC_DIR"]

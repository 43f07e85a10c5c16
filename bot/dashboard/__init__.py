"""The leaders' read-only dashboard: signed links (``signing``), pages (``pages``) rendered from
``templates/dashboard/`` with server-drawn SVG charts (``svg``); wired in by ``setup``."""

"""How long an idle workspace lives: the one rule the API and the daemon share.

A workspace's TTL is fixed when it is made: the site setting, or for a site
setting of 0 the template's default. Rows and the daemon count seconds.
"""

from __future__ import annotations

from db.vocabulary import WORKSPACE_TTL_MAX_S, WORKSPACE_TTL_MIN_S


def effective_ttl_s(site_ttl_s: int, template_default_ttl_s: int | None) -> int | None:
    """The TTL a new workspace gets: the site's, or for 0 the template's default
    (whose None means the workspace never autostops). The site value is validated
    where it is set (0, or 60 s to 30 days)."""
    if site_ttl_s == 0:
        return template_default_ttl_s
    return site_ttl_s


def ttl_in_bounds(seconds: int) -> bool:
    """Whether a non-zero TTL is one a site or a template may set (1 minute to 30 days)."""
    return WORKSPACE_TTL_MIN_S <= seconds <= WORKSPACE_TTL_MAX_S

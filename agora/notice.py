"""`agora notice`: the public page telling a community what Agora measures about it.

Generated, never hand-written per deployment: the channels and their settings come from
agora.yml, what is read and what is dropped from each connector's own declarations
(`fields_read`, `drop_reasons`, a team file's `columns`), the protections from the
privacy block. Written as Markdown (to publish in a repository or wiki) and as a
self-contained HTML page, from one Jinja2 template each over the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agora.config import AgoraConfig, ConfigError

TEMPLATES = Path(__file__).resolve().parent / "report" / "templates"

#: Plain-language reasons for each drop a connector declares; an unknown reason is shown by name.
DROP_REASONS = {
    "restricted_category": "posts in categories that are not open to everyone",
    "category_not_selected": "public categories this community did not choose to measure",
    "private_message": "private messages",
    "unlisted": "topics hidden from lists by moderators",
    "topic_unavailable": "topics deleted or made private before they were read",
    "not_public": "posts that are not public (staff-only whispers, followers-only or direct posts)",
    "action_post": "automatic moderation notices (not a contribution)",
    "deleted": "deleted posts",
    "hidden": "hidden or suppressed posts and revisions",
    "no_account": "posts whose author account was deleted",
    "pending_review": "reviews not yet submitted (visible to their author only)",
    "not_authored": "reposts and boosts of someone else's post",
    "withheld": "posts withheld in some countries",
    "protected_account": "posts of protected accounts",
    "locked_account": "posts of locked accounts",
    "opted_out_of_indexing": "posts of accounts that opted out of search and indexing",
    "author_unknown": "posts whose author could not be confirmed as public",
}
NEVER_STORED = (
    "names, user names (handles), e-mail addresses, avatars, biographies or locations",
    "the text of posts and comments (it is read in memory only, to add topic tags, and discarded)",
    "account ids as the platform knows them (they are replaced by pseudonyms as they are read)",
    "IP addresses (an anonymous wiki edit's address is pseudonymised like an account)",
)


@dataclass
class Channel:
    name: str
    what: str
    fields: list[str]
    drops: list[str]
    team_file: bool


def _describe(source: Any) -> str:
    t = source.type
    if t == "discourse":
        cats = f" (categories: {', '.join(source.categories)})" if source.categories else ""
        return f"the public forum at {source.base_url}{cats}"
    if t == "github":
        return f"public issues, pull requests, reviews and comments in {', '.join(source.repos)} on GitHub"
    if t == "mediawiki":
        pages = f" (talk pages: {', '.join(source.pages)})" if source.pages else ""
        views = f"; daily view counts of {', '.join(source.support_pages)}" if source.support_pages else ""
        return f"public revisions on the wiki at {source.api_url}{pages}{views}"
    if t == "stackexchange":
        return f"public questions tagged {', '.join(source.tagged)} on {source.site} (Stack Exchange), with their answers and comments"
    if t == "x":
        return f"public posts on X matching {source.query!r}"
    if t == "mastodon":
        instance = source.instance or urlparse(str(source.base_url)).hostname
        return f"public posts tagged #{source.hashtag.lstrip('#')} on {instance}"
    return {
        "survey": "answers to the team's own survey: a score from 0 to 10 and when it was given, nothing else",
        "feedback_log": "the team's log of feedback received and what was done about it",
        "learnings": "the team's own notes of what it learned",
        "team_activity": "the team's own list of events, talks, posts and trips",
    }.get(t, t)


def channels(cfg: AgoraConfig) -> list[Channel]:
    from agora.config import TEAM_PLATFORMS
    from connectors.base import connector_class

    out = []
    for source in cfg.sources:
        cls = connector_class(source.type)
        fields = list(getattr(cls, "fields_read", ()) or getattr(cls, "columns", ()))
        drops = [DROP_REASONS.get(r, r.replace("_", " ")) for r in getattr(cls, "drop_reasons", ())]
        out.append(Channel(source.name, _describe(source), fields, drops, source.type in TEAM_PLATFORMS))
    return out


def _differential_privacy(cfg: AgoraConfig) -> Any:
    """The differential-privacy block when this deployment has one and it is on (opt-in)."""
    dp = getattr(cfg.privacy, "differential_privacy", None)
    return dp if dp is not None and getattr(dp, "enabled", True) else None


def facts(cfg: AgoraConfig) -> dict[str, Any]:
    contact = getattr(cfg.privacy, "contact", None)
    if not contact:
        raise ConfigError("privacy.contact: the notice needs a contact for opt-out and erasure requests")
    return {
        "community": cfg.community,
        "channels": channels(cfg),
        "never_stored": NEVER_STORED,
        "k_min": cfg.privacy.k_min,
        "retention_days": cfg.privacy.retention_days,
        "staff_count": len(cfg.privacy.staff),
        "dp": _differential_privacy(cfg),
        "contact": contact,
        "contact_is_email": "@" in contact and "://" not in contact,
    }


def render(cfg: AgoraConfig) -> tuple[str, str]:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    values = facts(cfg)
    plain = Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    html = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for env in (plain, html):
        env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]  # unlike `capitalize`, keeps "GitHub"
    return plain.get_template("notice.md.j2").render(**values), html.get_template("notice.html.j2").render(**values)


def default_out_dir(cfg: AgoraConfig) -> Path:
    warehouse = cfg.path("warehouse")
    return (cfg.resolve("data") if "://" in warehouse else Path(warehouse).parent) / "notice"


def write_notice(cfg: AgoraConfig, out: Path | None = None) -> tuple[Path, Path]:
    """Write notice.md and notice.html into `out` (default: data/notice/); returns both paths."""
    md, html = render(cfg)
    out = Path(out) if out else default_out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "notice.md", out / "notice.html"
    for path, text in zip(paths, (md, html), strict=True):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths

"""`agora notice`: the public page telling a community what Agora measures about it.

Generated, never hand-written per deployment: the channels and their settings come from
agora.yml; what is read and what is dropped, in plain words, from each platform's own
declarations (its `describe`, its connector's `fields_read` and `drop_reasons`, a team
file's `columns`: connectors/registry.py), so no platform is named here; the protections
from the privacy block. Written as Markdown (to publish in a repository or wiki) and as a
self-contained HTML page, from one Jinja2 template each over the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agora.config import AgoraConfig, ConfigError

TEMPLATES = Path(__file__).resolve().parent / "report" / "templates"

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


def channels(cfg: AgoraConfig) -> list[Channel]:
    """One entry per configured source, in the words its platform declares (connectors/registry.py)."""
    from connectors.registry import platform

    out = []
    for source in cfg.sources:
        p = platform(source.type)
        fields = list(p.connector.fields_read or getattr(p.connector, "columns", ()))
        drops = list(p.connector.drop_reasons.values())
        out.append(Channel(source.name, p.describe(source), fields, drops, p.team))
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
        env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]  # unlike `capitalize`: inner capitals kept
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

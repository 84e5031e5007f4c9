"""Write `.env` for docker-compose from `.env.example`, every placeholder replaced by a fresh secret.

    python deploy/generate_env.py            # writes .env (mode 600) next to docker-compose.yml
    python deploy/generate_env.py --print    # or print it, to paste into a secret manager

Every `change-me...` value gets its own random value: 256-bit URL-safe strings, a real
Fernet key for Airflow, 64 hex characters for the pseudonym key. Other lines (user names,
comments) are copied as they are. An existing file is never overwritten: the pseudonym
key in it is what keeps every KPI continuous (docs/privacy.md §4).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"^(\w+)=(change-me\S*)\s*$")


def secret_for(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if name == "AGORA_PSEUDONYM_KEY":
        return secrets.token_hex(32)
    return secrets.token_urlsafe(32)


def generate(example: str) -> str:
    lines = []
    for line in example.splitlines():
        m = PLACEHOLDER.match(line)
        lines.append(f"{m.group(1)}={secret_for(m.group(1))}" if m else line)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = generate((ROOT / ".env.example").read_text())
    if argv == ["--print"]:
        sys.stdout.write(text)
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    target = ROOT / ".env"
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"{target} exists: not overwritten (it holds the pseudonym key)", file=sys.stderr)
        return 1
    with os.fdopen(fd, "w") as f:
        f.write(text)
    print(f"wrote {target} (mode 600)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

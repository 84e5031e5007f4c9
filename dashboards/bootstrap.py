"""Initialise Superset's metadata database in one process (runs in Superset's venv).

``superset db upgrade``, ``fab create-admin`` and ``superset init`` each pay ~8 s of
imports; doing the same three steps in one interpreter halves the first start.
Idempotent: migrations are no-ops when current, the admin is created when missing
and otherwise given the requested password, permissions are re-synced.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    user = os.environ.get("SUPERSET_ADMIN_USER", "admin")
    password = os.environ["SUPERSET_ADMIN_PASSWORD"]

    from flask_migrate import upgrade
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import appbuilder, security_manager
        from superset.extensions import db

        upgrade()
        appbuilder.add_permissions(update_perms=True)
        security_manager.sync_role_definitions()
        existing = security_manager.find_user(username=user)
        if existing is None:
            admin_role = security_manager.find_role("Admin")
            created = security_manager.add_user(
                user, "Agora", "Admin", f"{user}@localhost", admin_role, password=password
            )
            if not created:
                print(f"could not create admin user {user!r}", file=sys.stderr)
                return 1
        else:
            # run.sh only re-runs this when the user or password changed: make it true.
            security_manager.reset_password(existing.id, password)
        db.session.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Create or update an analyst: SQL Lab on the serving database, dashboards, nothing else.

Runs in Superset's venv after the assets are imported (the database must exist):

    python dashboards/analyst.py USERNAME     # password from AGORA_ANALYST_PASSWORD

The analyst gets Superset's ``Gamma`` (view dashboards and charts) and ``sql_lab``
roles plus an ``Agora analyst`` role holding one permission: access to the serving
database. The connection itself is read-only, so what they run cannot change it.
"""

from __future__ import annotations

import os
import sys

DATABASE_NAME = "Agora serving (read-only)"
ROLE = "Agora analyst"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: analyst.py USERNAME (password in AGORA_ANALYST_PASSWORD)", file=sys.stderr)
        return 2
    username, password = argv[0], os.environ["AGORA_ANALYST_PASSWORD"]

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager as sm
        from superset.extensions import db
        from superset.models.core import Database

        database = db.session.query(Database).filter_by(database_name=DATABASE_NAME).one_or_none()
        if database is None:
            print(f"no database named {DATABASE_NAME!r}: import the dashboards first", file=sys.stderr)
            return 1
        role = sm.find_role(ROLE) or sm.add_role(ROLE)
        role.permissions = [sm.find_permission_view_menu("database_access", database.perm)]
        roles = [sm.find_role("Gamma"), sm.find_role("sql_lab"), role]
        user = sm.find_user(username=username)
        if user is None:
            user = sm.add_user(username, "Agora", "Analyst", f"{username}@localhost", roles, password=password)
            if not user:
                print(f"could not create user {username!r}", file=sys.stderr)
                return 1
        else:
            user.roles = roles
            sm.reset_password(user.id, password)
        names = ", ".join(r.name for r in roles)
        db.session.commit()
    print(f"analyst {username!r}: roles {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

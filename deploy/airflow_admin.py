"""Create Airflow's first admin user in the FAB auth manager (idempotent), run by `entrypoint.sh init`.

The name and password come from AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD, never from
the command line (where `ps` would show them); an existing user is left as it is.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    username = os.environ.get("AIRFLOW_ADMIN_USER", "admin")
    password = os.environ.get("AIRFLOW_ADMIN_PASSWORD", "")
    if len(password) < 16:
        print("airflow_admin: AIRFLOW_ADMIN_PASSWORD must be set (16+ characters)", file=sys.stderr)
        return 2
    with get_application_builder() as appbuilder:
        if appbuilder.sm.find_user(username=username):
            print(f"airflow admin {username} exists")
            return 0
        role = appbuilder.sm.find_role("Admin")
        if not appbuilder.sm.add_user(username, "Agora", "Admin", f"{username}@localhost", role, password):
            print(f"airflow_admin: could not create {username}", file=sys.stderr)
            return 1
    print(f"airflow admin {username} created")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One-shot: initiate the replica set, create its users, enable pre-images on desks.

Run by docker-compose's `mongo-init` service in the `mongo` container's network: MongoDB
started with a keyfile (access control on) lets a client on localhost initiate the set and
create the first user (the localhost exception), and nothing more. So this script, on
localhost, initiates the set and creates the administrator; then, as the administrator, the
application's user (`readWrite` on the desks database only) and the broadcasters' (`read`
there), and turns pre- and post-images on. Every step is idempotent: a second run finds the
set and the administrator (through the set: after a failover drill the primary may be another
member), brings the application's users to their passwords and roles, and exits 0. The
administrator's password is changed in MongoDB (`db.changeUserPassword`), not here.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Any
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

log = logging.getLogger("desks.replica_set_init")

ALREADY_INITIALIZED = 23
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
USER_EXISTS = 51003
# Passwords go into connection URIs (MONGODB_URI) as they are: characters a URI never escapes.
URI_SAFE = re.compile(r"[A-Za-z0-9._~-]{32,}")


class SetupError(Exception):
    """A setting this script needs is missing or unusable."""


def password(name: str) -> str:
    """Return the password in environment variable `name`, or raise SetupError saying why."""
    value = os.environ.get(name, "")
    if not URI_SAFE.fullmatch(value):
        raise SetupError(
            f"{name} must be at least 32 characters of A-Z a-z 0-9 . _ ~ - (it goes into "
            "connection URIs as it is): python3 -c "
            '"import secrets; print(secrets.token_urlsafe(32))"'
        )
    return value


def initiate(
    admin: Any, set_name: str, members: list[str], timeout: float = 0, interval: float = 1.0
) -> bool:
    """Run replSetInitiate unless the set exists; return whether this call initiated it.

    The first member gets the highest priority: the initialiser makes the first user on it,
    over localhost, so it should be the primary after the first election and after a drill.
    A member not up yet fails the initiate's quorum check: tried again until `timeout`.
    """
    if admin.command("hello").get("setName"):
        return False  # initiated before (hello needs no authentication)
    config = {
        "_id": set_name,
        "members": [
            {"_id": index, "host": host, "priority": 2 if index == 0 else 1}
            for index, host in enumerate(members)
        ],
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.command("replSetInitiate", config)
            return True
        except OperationFailure as error:
            if error.code == ALREADY_INITIALIZED:  # by another run, just now
                return False
            if error.code == UNAUTHORIZED:
                raise SetupError(
                    "replSetInitiate refused: connect over localhost (MONGO_HOST), where "
                    "access control lets the first steps through"
                ) from error
            if time.monotonic() >= deadline:
                raise
            log.info("replica set not initiated yet: %s; trying again", error)
            time.sleep(interval)


def create_administrator(admin: Any, user: str, secret: str) -> bool:
    """Create the first user, `root`, over the localhost exception; False if users exist."""
    try:
        admin.command("createUser", user, pwd=secret, roles=[{"role": "root", "db": "admin"}])
    except OperationFailure as error:
        if error.code in (UNAUTHORIZED, USER_EXISTS):  # the exception closed with the first
            return False
        raise
    return True


def ensure_user(admin: Any, user: str, secret: str, roles: list[dict[str, str]]) -> str:
    """Create `user` in `admin` with exactly `roles`, or bring an existing one to them (and to
    `secret`); return "created" or "updated"."""
    try:
        admin.command("createUser", user, pwd=secret, roles=roles)
    except OperationFailure as error:
        if error.code != USER_EXISTS:
            raise
        admin.command("updateUser", user, pwd=secret, roles=roles)
        return "updated"
    return "created"


def application_roles(database: str) -> dict[str, list[dict[str, str]]]:
    """Return each application user's roles: nothing beyond the desks database."""
    return {
        "writer": [{"role": "readWrite", "db": database}],  # the API and the watcher
        "reader": [{"role": "read", "db": database}],  # broadcasters only read the log
    }


def wait_for_primary(admin: Any, timeout: float, interval: float = 0.5) -> None:
    """Wait until the server we talk to is a writable primary, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while not admin.command("hello").get("isWritablePrimary"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no writable primary after {timeout:.0f}s")
        time.sleep(interval)


def enable_pre_images(database: Any, collection: str) -> None:
    """Make `collection` record pre- and post-images, so delete events carry the desk."""
    images = {"enabled": True}
    try:
        database.create_collection(collection, changeStreamPreAndPostImages=images)
    except CollectionInvalid:  # already exists: switch the option on instead
        database.command("collMod", collection, changeStreamPreAndPostImages=images)


def connect(host: str, timeout: float, user: str = "", secret: str = "") -> Any:
    """Connect straight to `host` (the set may not exist yet: no topology to discover)."""
    credentials = f"{quote_plus(user)}:{quote_plus(secret)}@" if user else ""
    options = "directConnection=true" + ("&authSource=admin" if user else "")
    return MongoClient(
        f"mongodb://{credentials}{host}/?{options}", serverSelectionTimeoutMS=int(timeout * 1000)
    )


def connect_set(members: list[str], set_name: str, timeout: float, user: str, secret: str) -> Any:
    """Connect to the replica set as `user` (authenticated against admin)."""
    hosts = ",".join(members)
    return MongoClient(
        f"mongodb://{quote_plus(user)}:{quote_plus(secret)}@{hosts}/"
        f"?replicaSet={set_name}&authSource=admin",
        serverSelectionTimeoutMS=int(timeout * 1000),
    )


def administrator_exists(
    members: list[str], set_name: str, timeout: float, user: str, secret: str
) -> bool:
    """Tell whether the administrator can log in (False: not made yet; made with another
    password is an error: MONGO_ADMIN_PASSWORD is changed in MongoDB, not here)."""
    client = connect_set(members, set_name, timeout, user, secret)
    try:
        client.admin.command("ping")
        return True
    except OperationFailure as error:
        if error.code == AUTHENTICATION_FAILED:
            return False
        raise
    finally:
        client.close()


def main() -> int:
    """Initiate the set named by the environment and create its users; exit non-zero on
    failure (2 for a missing or unusable setting)."""
    logging.basicConfig(level=logging.INFO, format="level=%(levelname)s msg=%(message)s")
    host = os.environ.get("MONGO_HOST", "localhost:27017")
    set_name = os.environ.get("MONGO_REPLICA_SET", "rs0")
    members = os.environ.get("MONGO_MEMBERS", "mongo:27017").split(",")
    database = os.environ.get("DESKS_DB", "desks")
    timeout = float(os.environ.get("MONGO_INIT_TIMEOUT", "60"))
    administrator = os.environ.get("MONGO_ADMIN_USER", "admin")
    users = {
        "writer": os.environ.get("DESKS_MONGO_USER", "desks"),
        "reader": os.environ.get("DESKS_MONGO_READER_USER", "desks-reader"),
    }
    try:
        secrets = {
            "admin": password("MONGO_ADMIN_PASSWORD"),
            "writer": password("DESKS_MONGO_PASSWORD"),
            "reader": password("DESKS_MONGO_READER_PASSWORD"),
        }
    except SetupError as error:
        log.error("replica set init refused: %s", error)
        return 2
    local = connect(host, timeout)  # over the localhost exception
    try:
        did = initiate(local.admin, set_name, members, timeout)
        log.info("replica set %s", "initiated" if did else "already initiated")
        if not administrator_exists(members, set_name, timeout, administrator, secrets["admin"]):
            # Only the first time: the set's first user is made over localhost, on the
            # primary (the first member: its priority is the highest).
            wait_for_primary(local.admin, timeout)
            create_administrator(local.admin, administrator, secrets["admin"])
            log.info("administrator created")
    except (PyMongoError, TimeoutError, SetupError) as error:
        log.error("replica set init failed: %s", error)
        return 1
    finally:
        local.close()
    # As the administrator, through the set: whichever member is primary now (after a drill
    # it may not be this one).
    client = connect_set(members, set_name, timeout, administrator, secrets["admin"])
    try:
        for role, roles in application_roles(database).items():
            outcome = ensure_user(client.admin, users[role], secrets[role], roles)
            log.info("user %s %s with %s", users[role], outcome, roles)
        enable_pre_images(client[database], "desks")
        log.info("ready: primary writable, users made, pre-images on %s.desks", database)
        return 0
    except (PyMongoError, TimeoutError) as error:
        log.error("replica set init failed: %s", error)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())

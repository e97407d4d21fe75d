"""One-shot: initiate the replica set (idempotently) and enable pre-images on desks.

Run by docker-compose's `mongo-init` service against the `mongo` service. Exits 0 when the set
has a writable primary and the desks collection records pre-images, whether or not this run
did the initiating.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from pymongo import MongoClient
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

log = logging.getLogger("desks.replica_set_init")

ALREADY_INITIALIZED = 23


def initiate(admin: Any, set_name: str, members: list[str]) -> bool:
    """Run replSetInitiate unless the set already exists; return whether this call initiated it."""
    config = {
        "_id": set_name,
        "members": [{"_id": index, "host": host} for index, host in enumerate(members)],
    }
    try:
        admin.command("replSetInitiate", config)
    except OperationFailure as error:
        if error.code == ALREADY_INITIALIZED:
            return False
        raise
    return True


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


def main() -> int:
    """Initiate the set named by the environment; exit non-zero on failure."""
    logging.basicConfig(level=logging.INFO, format="level=%(levelname)s msg=%(message)s")
    host = os.environ.get("MONGO_HOST", "mongo:27017")
    set_name = os.environ.get("MONGO_REPLICA_SET", "rs0")
    members = os.environ.get("MONGO_MEMBERS", host).split(",")
    database = os.environ.get("DESKS_DB", "desks")
    timeout = float(os.environ.get("MONGO_INIT_TIMEOUT", "60"))
    # directConnection: the set does not exist yet, so there is no topology to discover.
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://{host}/?directConnection=true", serverSelectionTimeoutMS=int(timeout * 1000)
    )
    try:
        did = initiate(client.admin, set_name, members)
        log.info("replica set %s", "initiated" if did else "already initiated")
        wait_for_primary(client.admin, timeout)
        enable_pre_images(client[database], "desks")
        log.info("ready: primary writable, pre-images on %s.desks", database)
        return 0
    except (PyMongoError, TimeoutError) as error:
        log.error("replica set init failed: %s", error)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())

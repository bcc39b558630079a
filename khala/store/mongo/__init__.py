"""The MongoDB backend (khala/store/mongo/store.py), and on a FerretDB server its FerretDB store
(khala/store/mongo/ferret.py), chosen by what the server says it is."""

from __future__ import annotations

from pymongo.errors import ConnectionFailure

from khala.errors import Unavailable
from khala.store.mongo.client import connect, is_ferretdb
from khala.store.mongo.store import MongoStore

__all__ = ["MongoStore", "open_mongo"]


def open_mongo(url: str, write_concern: str | int = "majority",
               read_concern: str = "majority", bodies_apart: bool = False) -> MongoStore:
    """The store at `url`: a FerretStore when the server is FerretDB, else a MongoStore; both
    on one client (tasks, operations, locks)."""
    client, database = connect(url)
    try:
        try:
            ferret = is_ferretdb(client)
        except ConnectionFailure as exc:  # no server: said as the store says it for any call
            raise Unavailable(f"MongoDB store unreachable: {exc}") from exc
        if ferret:
            from khala.store.mongo.ferret import FerretStore

            return FerretStore(client, database, write_concern, read_concern, bodies_apart)
        return MongoStore(client, database, write_concern, read_concern, bodies_apart)
    except BaseException:
        client.close()
        raise

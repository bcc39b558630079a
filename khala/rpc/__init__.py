"""The Judicator Thrift interface: the IDL, loaded once with thriftpy2.

The only package that touches the generated module: convert/ (structs ↔ domain types, one
module per topic), client.py (the typed client) over failover.py (connections and failover),
handler.py and server.py (serving the judicator's domain API). stub.py is the client's
interface in memory, for tests of its callers. See docs/rpc.md.
"""

from __future__ import annotations

import os
from typing import Any

import thriftpy2

IDL_PATH = os.path.join(os.path.dirname(__file__), "judicator.thrift")

# The generated module: judicator_thrift.Judicator, judicator_thrift.Task, ...
judicator_thrift: Any = thriftpy2.load(IDL_PATH, module_name="judicator_thrift")

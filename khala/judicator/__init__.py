"""The judicator node: the Judicator Thrift service over the store, plus the reaper."""

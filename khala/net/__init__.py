"""Plain TCP serving shared by Khala's own servers (the judicator's Thrift port, an executor's
stream endpoint)."""

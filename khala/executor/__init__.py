"""The executor node: leases tasks from judicators and runs each in a sandbox."""

"""The task JSON of API v2: its typed models (pydantic) and the conversion to and from the
domain model. Shared by the gateway (the v2 routes, pow-1, the event stream) and the judicator
(webhook bodies), so neither node imports the other."""

"""Tables and the keyword-only functions that read and write them.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic reads it).
"""
from models import (  # noqa: F401
    aibot_stream, campaign, conversation, dashboard_secret, dedupe, digest, duty, duty_spot, group,
    hazard, inspection, invite, monthly, org, outbox, photo, selfcheck,
)

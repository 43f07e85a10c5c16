"""Tables and the keyword-only functions that read and write them.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic reads it).
"""
from models import (conversation, dedupe, hazard, invite, org, outbox,  # noqa: F401
                    photo)

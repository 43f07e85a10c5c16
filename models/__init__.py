"""Tables and the keyword-only functions that read and write them.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic reads it).
"""
from models import (conversation, dedupe, digest, hazard, invite, org,  # noqa: F401
                    outbox, photo, selfcheck)
from models import aibot_stream, group  # noqa: F401,E402
from models import campaign, inspection  # noqa: F401,E402
from models import duty, duty_spot  # noqa: F401,E402
from models import monthly  # noqa: F401,E402
from models import dashboard_secret  # noqa: F401,E402

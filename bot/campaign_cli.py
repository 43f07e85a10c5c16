"""``safebot campaign load FILE``: check a campaign data file and store it (again: update)."""
from __future__ import annotations

import sys
from pathlib import Path

from bot.clock import Clock
from bot.config import Config
from bot.db import Database
from bot.render import Renderer
from models.campaign_file import CampaignError, load_campaign, parse_campaign
from models.migrate import upgrade


def load_file(cfg: Config, path: Path) -> int:
    renderer = Renderer(cfg.tz)
    try:
        spec = parse_campaign(path.name, path.read_text(encoding="utf-8"))
    except OSError as exc:
        print(renderer.render("campaign/cli_error.txt.j2", error=f"{path}: {exc.strerror}"),
              file=sys.stderr)
        return 1
    except CampaignError as exc:
        print(renderer.render("campaign/cli_error.txt.j2", error=str(exc)), file=sys.stderr)
        return 1
    db = Database(cfg.database.url)
    try:
        upgrade(db.engine)
        done = db.call(load_campaign, spec=spec, now=Clock().now())
    except CampaignError as exc:
        print(renderer.render("campaign/cli_error.txt.j2", error=str(exc)), file=sys.stderr)
        return 1
    finally:
        db.close()
    print(renderer.render("campaign/cli_loaded.txt.j2", **done))
    return 0

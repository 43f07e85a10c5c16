"""Every router, in priority order: the order of this tuple is the order commands are tried."""
from handlers import (binding, checklist, common, hazard_extension, hazard_plan, hazard_report,
                      hazard_review, hazard_view)

ROUTERS = (
    common.cancel_router,  # 取消 and 下一页 beat every conversation state
    binding.router,
    hazard_report.router,
    hazard_plan.router,
    hazard_review.router,
    hazard_extension.router,
    hazard_view.router,
    checklist.router,
    common.router,         # 帮助 and the welcome last
)

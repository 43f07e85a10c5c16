"""Every router, in priority order: the order of this tuple is the order commands are tried."""
from handlers import binding, common

ROUTERS = (
    common.cancel_router,  # 取消 and 下一页 beat every conversation state
    binding.router,
    common.router,         # 帮助 and the welcome last
)

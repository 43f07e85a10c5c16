"""Every router, in priority order: the order of this tuple is the order commands are tried."""
from handlers import group  # 绑定群: the AI bot's group chats
from handlers import campaign, inspection, inspection_view
from handlers import duty, duty_leave, duty_shift, duty_spot
from handlers import monthly, monthly_export, monthly_items
from handlers import grading, stats
from handlers import (binding, checklist, common, hazard_extension, hazard_plan, hazard_report,
                      hazard_review, hazard_view, ledger_export, selfcheck,
                      selfcheck_draft, snooze)

ROUTERS = (
    common.cancel_router,  # 取消 and 下一页 beat every conversation state
    binding.router,
    group.router,          # 绑定群 (the AI bot's group chats)
    hazard_report.router,
    hazard_plan.router,
    hazard_review.router,
    hazard_extension.router,
    hazard_view.router,
    selfcheck.router,
    selfcheck_draft.router,
    snooze.router,
    ledger_export.router,
    monthly.router,        # 月报 (the table, the progress text)
    monthly_items.router,  # 月报: drafted and own items, 预览, 提交
    monthly_export.router,  # 导出月报
    campaign.router,       # 阶段, 提交
    inspection.router,     # 检查, 督查, 暗访
    inspection_view.router,  # 检查情况
    duty.router,           # 值班, 值班表
    duty_shift.router,     # 签到, 平安, 报告, 交班, 紧急
    duty_spot.router,      # 查岗, 在岗, 查岗记录
    duty_leave.router,     # 请假
    stats.router,          # 统计, 月报情况, 看板
    grading.router,        # 分级, 通报 (the bureau)
    checklist.router,
    common.router,         # 帮助 and the welcome last
)

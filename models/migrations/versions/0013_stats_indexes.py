"""indexes for a district's 统计 (bench/growth.py): a period's duty shifts and finished
self-check runs of every unit, read from the index alone

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 10:00:00.000000
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('duty_shift', schema=None) as batch_op:
        batch_op.create_index('ix_duty_shift_day', ['day', 'unit_id', 'checked_in_at'],
                              unique=False)

    with op.batch_alter_table('selfcheck_run', schema=None) as batch_op:
        batch_op.create_index('ix_selfcheck_run_finished', ['finished_at', 'status', 'unit_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('selfcheck_run', schema=None) as batch_op:
        batch_op.drop_index('ix_selfcheck_run_finished')

    with op.batch_alter_table('duty_shift', schema=None) as batch_op:
        batch_op.drop_index('ix_duty_shift_day')

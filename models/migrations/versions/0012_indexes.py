"""indexes for a district of 2,000 units and 1,000,000 hazards (bench/growth.py): a period's
hazards (统计, 导出台账, the weekly digest) and a period's inspections (统计)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 07:49:00.489073
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hazard', schema=None) as batch_op:
        batch_op.create_index('ix_hazard_reported_at', ['reported_at'], unique=False)

    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.create_index('ix_inspection_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inspection', schema=None) as batch_op:
        batch_op.drop_index('ix_inspection_at')

    with op.batch_alter_table('hazard', schema=None) as batch_op:
        batch_op.drop_index('ix_hazard_reported_at')

"""processed_callback.done: a turn that died with its process is handled again on WeCom's retry

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 11:00:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_callback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('done', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('processed_callback', schema=None) as batch_op:
        batch_op.drop_column('done')

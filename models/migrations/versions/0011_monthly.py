"""monthly updates (月报): per unit and month, the statistics, corrections and progress text;
their work information and typical cases

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 06:54:01.679698
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monthly_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('computed', sa.JSON(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('corrections', sa.JSON(), nullable=False),
    sa.Column('progress', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_by', sa.Integer(), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['submitted_by'], ['person.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_id', 'month', name='uq_monthly_update_unit_month')
    )
    with op.batch_alter_table('monthly_update', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monthly_update_month'), ['month'], unique=False)

    op.create_table('monthly_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('update_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('photo_ids', sa.JSON(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kept', sa.Boolean(), nullable=True),
    sa.Column('edited', sa.Boolean(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['update_id'], ['monthly_update.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('monthly_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monthly_item_update_id'), ['update_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('monthly_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monthly_item_update_id'))

    op.drop_table('monthly_item')
    with op.batch_alter_table('monthly_update', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monthly_update_month'))

    op.drop_table('monthly_update')

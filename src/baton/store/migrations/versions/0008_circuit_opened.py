"""When a connector's current outage began, so its owners hear of it once per outage.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connector_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connector_state", schema=None) as batch_op:
        batch_op.drop_column("opened_ms")

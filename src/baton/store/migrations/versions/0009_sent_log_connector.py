"""Rate limits per connector: the sent-log is counted by connector over a window.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sent_log", schema=None) as batch_op:
        batch_op.create_index("ix_sent_log_connector", ["connector", "sent_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sent_log", schema=None) as batch_op:
        batch_op.drop_index("ix_sent_log_connector")

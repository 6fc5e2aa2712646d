"""Policy versions table; action kind on the sent-log (rate limits); rule and author on the
outbox (approvals).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "files",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("activated_ms", sa.BigInteger(), nullable=True),
        sa.Column("activated_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("sent_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=64), server_default="", nullable=False))
        batch_op.create_index("ix_sent_log_kind", ["kind", "sent_ms"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("author", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("author")
        batch_op.drop_column("rule")
    with op.batch_alter_table("sent_log", schema=None) as batch_op:
        batch_op.drop_index("ix_sent_log_kind")
        batch_op.drop_column("kind")
    op.drop_table("policies")

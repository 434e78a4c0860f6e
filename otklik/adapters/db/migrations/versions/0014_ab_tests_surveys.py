"""A/B tests (tests, exposures, conversions) and survey answers

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("goal", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kept", sa.String(length=32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_by", sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "ab_exposures",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("test_key", sa.String(length=80), nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("exposed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("test_key", "contact_id"),
    )
    op.create_index("ix_ab_exposures_contact_id", "ab_exposures", ["contact_id"])
    op.create_table(
        "ab_conversions",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("test_key", sa.String(length=80), nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("goal", sa.String(length=16), nullable=False),
        sa.Column("converted_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("test_key", "contact_id"),
    )
    op.create_index("ix_ab_conversions_contact_id", "ab_conversions", ["contact_id"])
    op.create_table(
        "survey_answers",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("survey", sa.String(length=80), nullable=False),
        sa.Column("question", sa.String(length=64), nullable=False),
        sa.Column("option", sa.String(length=64), nullable=True),
        sa.Column("text", sa.String(length=500), nullable=True),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("answered_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("survey", "question", "contact_id", "source"),
    )
    op.create_index("ix_survey_answers_contact_id", "survey_answers", ["contact_id"])
    op.create_index("ix_survey_answers_question", "survey_answers", ["survey", "question"])


def downgrade() -> None:
    op.drop_table("survey_answers")
    op.drop_table("ab_conversions")
    op.drop_table("ab_exposures")
    op.drop_table("ab_tests")

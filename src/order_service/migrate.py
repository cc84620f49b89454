"""Run Alembic migrations from any working directory, installed or not.

The scripts ship inside the package as `order_service/migrations` (a link to
the repository's top-level `alembic/` folder; a wheel carries the files).
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)

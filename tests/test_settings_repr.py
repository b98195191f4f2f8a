"""The settings repr carries no secret. Found by audit: every token was a SecretStr, but DATABASE_URL
(a plain str) showed the PostgreSQL password in repr(settings), and the log redaction missed it."""

from __future__ import annotations

from bot.settings import Settings


def test_settings_repr_hides_the_database_password():
    settings = Settings(
        _env_file=None,
        slack_signing_secret="sig-secret-value",
        database_url="postgresql+psycopg://bot:Db-Pa55word@db.internal:5432/incidents",
    )
    shown = repr(settings) + str(settings)
    assert "sig-secret-value" not in shown  # tokens are masked (this part holds)
    assert "Db-Pa55word" not in shown, shown

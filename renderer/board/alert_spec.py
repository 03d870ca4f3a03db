"""What one `[[alerts]]` entry's `email` table says, as the loader hands it on (checked at load)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MailTarget:
    """Where and how a mail alert is sent; the password is read from `password_env` when sending."""

    to: tuple[str, ...]
    sender: str  # the table's `from`
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None

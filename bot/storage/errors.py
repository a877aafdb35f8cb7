"""The store is locked or unreachable."""

from __future__ import annotations

from bot.errors import OpsbotError


class StoreUnavailable(OpsbotError):
    """The store is locked or unreachable."""

    def operator_text(self) -> str:
        return (
            ":floppy_disk: The bot's store is unavailable (locked or unreachable); nothing was done. Resume, "
            "rollback and cutover advance need it and are refused until it is back; a halt authority's "
            "break-glass `/halt <scope> <reason…> --now` still halts. Try again shortly."
        )

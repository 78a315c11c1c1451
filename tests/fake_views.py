"""The part of live.views.Views an EventStream uses, for stream tests: the browser at the head, storage fine."""

from __future__ import annotations

from nvrmon.live.viewkey import View
from nvrmon.live.views import CatchUp
from nvrmon.models import Cursor


class AtHead:
    """Every catch-up is empty (the browser is at seq 5); subclasses answer catch-ups of their own."""

    async def catch_up(self, view: View, cursor: Cursor | None) -> CatchUp:
        return CatchUp(5, "", changed=False)

    def cursor(self, seq: int) -> Cursor:
        return Cursor("e", seq)

    def storage_degraded(self) -> bool:
        return False

    def health_banner(self) -> str:
        return ""

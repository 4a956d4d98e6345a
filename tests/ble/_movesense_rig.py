"""One virtual Movesense on its own bumble hub, as the bleak front end's ``use_hub`` target."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from imuhip.sources.bumble_backend import BumbleHub, make_device, use_hub
from imuhip.sources.movesense.virtual import VirtualMovesense


@contextlib.asynccontextmanager
async def movesense_rig(
    address: str, hub_mtu: int = 247, **kw: object
) -> AsyncIterator[VirtualMovesense]:
    """A powered, advertising virtual Movesense at ``address`` (``kw``: its parameters); bleak
    clients created inside the block reach it. ``hub_mtu``: the ATT MTU the host offers."""
    hub = BumbleHub(att_mtu=hub_mtu)
    ms = VirtualMovesense(make_device(hub.link, address, "Movesense"), **kw)  # type: ignore[arg-type]
    await hub.power_on()
    await ms.start()
    with use_hub(hub):
        try:
            yield ms
        finally:
            await ms.close()

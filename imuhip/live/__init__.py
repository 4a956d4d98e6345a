"""Live: a BLE session while the person walks; composes the stages, no maths of its own.

:mod:`~imuhip.live.session` (record every packet, then process it), :mod:`~imuhip.live.processor`
(live angles and loss accounting), :mod:`~imuhip.live.latency`, :mod:`~imuhip.live.view`
(the terminal view), :mod:`~imuhip.live.rom_guide` (the guided ROM test).
"""

"""Live: a BLE session while the person walks; composes the stages, no maths of its own.

:mod:`~imuhip.live.session` (record every packet, then the live processor), :mod:`~imuhip.live.view`
(the terminal view), :mod:`~imuhip.live.rom_guide` (the guided ROM test).
"""

"""Gait: segment orientations -> joint angles, events, strides, metrics, compensation, ROM.

:mod:`~imuhip.gait.joints` (ISB joint angles) -> :mod:`~imuhip.gait.events` (initial contacts,
toe-offs, strides) -> :mod:`~imuhip.gait.metrics` (per-stride and session numbers) ->
:mod:`~imuhip.gait.compensation` and :mod:`~imuhip.gait.norms` (flags against published bands);
:mod:`~imuhip.gait.rom` is the seated hip IR/ER range-of-motion test. Imports the ground floor,
:mod:`imuhip.ingest` and :mod:`imuhip.orientation`.
"""

"""Ingest: ``RawPacket`` -> decoded samples -> one session clock.

Data flow inside the stage: :mod:`~imuhip.ingest.protocol` (the imuhip packet layout) ->
:mod:`~imuhip.ingest.decode` (packets to :class:`~imuhip.types.ImuSamples`, loss counted) ->
:mod:`~imuhip.ingest.align` (device clocks to the session clock, gaps as masks); beside them the
recording format (:mod:`~imuhip.ingest.recording`: written before anything decodes a packet)
and the gyroscope unit check (:mod:`~imuhip.ingest.units_check`). Compiled inner loops sit in
``_*_kernels.py`` beside the module that calls them. Imports only the ground floor
(:mod:`imuhip.conventions`, :mod:`imuhip.types`, :mod:`imuhip.errors`, :mod:`imuhip.numeric`).
"""

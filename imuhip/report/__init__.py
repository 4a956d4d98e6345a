"""Report: the only place that builds DataFrames, files, plots and HTML.

:mod:`~imuhip.report.writer` (report.json, strides.csv, the atomic output set),
:mod:`~imuhip.report.html` (the page), :mod:`~imuhip.report.tables` (CSV/Parquet tables) and
:mod:`~imuhip.report.cohort` (a study's sessions in one table, in parallel). Downstream of
:mod:`imuhip.pipeline`.
"""

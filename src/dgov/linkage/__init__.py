"""Entity resolution (实体识别): link or deduplicate records of persons and enterprises, golden records.

The engine (:mod:`dgov.linkage.engine`) runs on DuckDB and numpy without a database; the app's public
operations are in :mod:`dgov.linkage.services`, the ``dgov link`` command reads CSV files and a
small YAML config (see ``docs/linkage.md``).
"""

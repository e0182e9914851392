"""Bar file formats, one module each, found by `forex_assets.ingest.bar_files`.

To add a format, add a module here that defines ``FORMAT = BarFormat(...)`` (see
`forex_assets.ingest.bar_format`) with the module's name as its name: detection, the
`bar_source` resource's declared formats and `python -m forex_assets formats` take it
from there. Shared machinery is in `forex_assets.ingest.text_lines` (decoding, lines),
`forex_assets.ingest.parsing` (fields, numbers, times) and `forex_assets.ingest.columns`
(named columns in any spelling).
"""

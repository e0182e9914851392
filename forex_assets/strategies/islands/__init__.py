"""CMA-ES islands: several independent CMA-ES runs that trade their best solutions in a ring.

One CMA-ES run on a rugged strategy landscape converges to the first good basin it finds.
Islands with different seeds, start points and population sizes explore different basins
at once; every `migration_interval` generations each island sends its best `migrants`
solutions of that epoch to the next island (`es.inject`), so a good basin found by one
island is tried by the others without collapsing them all onto it. When an island's
CMA-ES stops (tolfun, tolx, flat fitness, ...) it restarts with a larger population
(IPOP) or alternates large and small local runs (BIPOP, Hansen 2009) while keeping its
best.

Every epoch advances each island in its own one-thread task in an `ElasticPool`, so the
islands run in parallel on the cores the step holds or leases. An island travels between processes
as its log of typed events (`events`), which a worker replays into a live CMA-ES
(`replay`, `run`); the same log, one sealed JSON file per epoch (`checkpoint`), lets a
killed search resume and end exactly where an uninterrupted one does.

Modules: `settings` (what to search with, checked), `search` (`island_search`: the epoch
loop, migration, stops), `replay` and `run` (one island in a worker), `events` (the log),
`checkpoint` (its files), `result` (`SearchResult`, merged from the logs).
"""

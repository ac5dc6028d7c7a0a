"""The compiled query engine: queries answered by generated Python instead of
graphql-core's generic field-by-field machinery, with graphql-core as the
fallback and the reference.

- ``plan``: what a validated document asks for, per response key;
- ``codegen``: Python source from plans, one function per selection set, named
  after the type and field it serves;
- ``run``: one execution (variables, arguments, awaitables gathered level by
  level so dataloaders batch);
- ``field_errors``: resolver errors located and nulled as graphql-core does;
- ``executor``: compile once per document, run, fall back (counted by reason),
  shadow mode;
- ``fast_lane``: a JSON query over HTTP without Strawberry's per-request machinery;
- ``shared_execution``, ``extension_runner``: subscription events executed once
  per distinct selection, extension hooks per frame only where defined;
- ``strawberry_compat``, ``graphql_core_compat``: the only private APIs used,
  each pinned by a test.

Installed with ``strawberry_compat.install(schema, limits)`` on a schema whose
class derives from ``strawberry_compat.CompiledQueries``.
"""

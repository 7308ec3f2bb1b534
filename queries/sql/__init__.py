"""SQL generation: sqlglot trees rendered per database engine."""

"""Code with no Dagster import, in three rooms: protocol (pure), network (I/O), warehouse."""

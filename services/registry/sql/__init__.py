"""SQL migrations of the registry catalog, applied in file-name order (``NNNN_name.sql``)."""

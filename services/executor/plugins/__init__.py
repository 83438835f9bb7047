"""Task plugins shipped with the executor, each loaded through the ``quantops.tasks`` entry
point like any third-party plugin."""

"""Task plugins shipped with the executor."""

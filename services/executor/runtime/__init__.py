"""Consuming and running tasks: ``engine`` (pullers, slots, reaper, shutdown) over ``puller``
and ``scheduler``; ``runner`` runs one message with its ``context`` and decides its ``outcome``;
``workers`` and ``worker_main`` are the process pool for CPU-bound work."""

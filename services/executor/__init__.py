"""The executor: a durable JetStream task queue with priorities, timeouts, retries, cancellation,
workflows and process isolation. Reads top-down: ``handlers`` (subjects), ``engine`` (consuming
and running tasks), ``service`` (wiring). ``docs/executor.md`` is the user's guide."""

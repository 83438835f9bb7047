"""The executor: a durable JetStream task queue with priorities, timeouts, retries, cancellation,
workflows and process isolation. Grouped by role: ``api`` (the request API: ``api.handlers``,
subject -> function), ``runtime`` (consuming and running tasks: ``runtime.engine``),
``storage`` (streams and status records); ``tasktypes`` (the task-type registry), ``builtins``,
``plugins`` (the quant plugin), ``metrics``, and ``service`` (wiring, the entry point).
``docs/executor.md`` is the user's guide."""

"""Pure quant logic for quantops: data, features, targets, walk-forward training, backtests.

Everything here is deterministic, NATS-free and side-effect free: functions over pandas, numpy and
scikit-learn that the executor's built-in tasks call. Invalid inputs raise ``ValueError`` with a
message meant for the user; the executor maps it to its own error type at the boundary.

Modules, roughly in pipeline order: ``specs`` (input Structs), ``data`` (demo prices, reading,
canonical bytes), ``validation``, ``features``, ``targets``, ``walkforward``, ``estimators``
(allow-list, ensembles, skops persistence), ``metrics``, ``training``, ``backtest``, ``risk``,
``search`` (sweep spaces), ``pipeline_steps`` and ``pipelines`` (declarative templates),
``recipe`` (what a registered model carries to be scored again), ``scoring`` (latest-bar
predictions), ``history`` (trial-history trends and advice).

The executor side is in two subpackages: ``tasks`` (the task plugin: validate_dataset,
train_model, backtest, predict, sweep, run_pipeline, pipeline_step; CPU work in ``tasks.work``
and ``tasks.jobs``) and ``server`` (the ``executor.quant.*`` subjects). docs/quant.md has the
whole picture.
"""

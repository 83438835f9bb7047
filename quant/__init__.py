"""The quant library of quantops: data, features, targets, walk-forward training, backtests.
A library, not a service: services import it like pandas.

Everything here is deterministic, NATS-free and side-effect free: functions over pandas, numpy and
scikit-learn that the executor's quant plugin and the registry call. Invalid inputs raise
``ValueError`` with a message meant for the user; the caller maps it to its own error type at the
boundary.

Modules, roughly in pipeline order: ``specs`` (input Structs), ``data`` (demo prices, reading,
canonical bytes), ``validation``, ``features``, ``targets``, ``walkforward``, ``estimators``
(allow-list, ensembles, skops persistence), ``performance`` (prediction and trading metrics),
``training``, ``backtest``, ``risk``, ``search`` (sweep spaces), ``pipeline_steps`` and
``pipelines`` (declarative templates), ``recipe`` (what a registered model carries to be scored
again), ``scoring`` (latest-bar predictions), ``history`` (trial-history trends and advice).
The live loop's decisions, bar by bar: ``streaming_features`` (incremental, equal to
``features``), ``bar_gate`` (duplicates, late bars, complete timestamps), ``risk_limits``,
``paper_broker`` (fills, positions, cash, P&L by the backtest's rules) and ``strategy_engine``.

The executor side (task plugin and ``executor.quant.*`` subjects) is the executor plugin
``services.executor.plugins.quant``. docs/quant.md has the whole picture.
"""

"""The live trading loop inside executor processes: market data on JetStream, feeds, strategy
runners and their ``executor.live.*`` endpoints. The decisions themselves are pure code in
``quant`` (``strategy_engine`` and what it uses), shared with the backtest."""

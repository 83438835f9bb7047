"""The quant plugin of the executor: task types over the ``quant`` library (``tasks``) and the
``executor.quant.*`` subjects served from executor processes (``server``)."""

"""The executor's request API: ``handlers`` (subject -> function) over ``submission``,
``cancellation``, ``queries``, ``deadletters`` and ``workflows`` (with the pure ``dag``)."""

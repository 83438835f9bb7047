"""The ``quantops`` command line: ``quantops up`` (the supervisor), ``serve``, ``status``,
``trace`` and the gateway commands. Not a service: it may import the services."""

"""The faces: how people and programs reach the engine.

The command line (``cli``, ``commands/``), the embedding API (``guard``: the stateful
runtime around the engine — policy reloads, trading state, the decision log, the time
budget), the JSON Lines stream (``stream``), terminal rendering (``render``), and the
long-running services built on the Guard: ``simulate``, ``watch`` and ``serve``.

May import: every other package. Nothing below imports a face, except that the policy tools
and ``contrib`` use ``faces.guard`` and ``faces.render`` (the layer table in
``tests/test_architecture.py`` says so explicitly).
"""

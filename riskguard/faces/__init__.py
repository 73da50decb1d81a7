"""The faces: how people and programs reach the engine.

The command line (``cli``, ``commands/``), the embedding API (``guard``), the JSON Lines
stream, and the long-running services (``simulate``, ``watch``, ``serve``). Faces may import
every lower package; nothing below imports a face (the policy tools and contrib may use
``faces.guard``, the stateful runtime around the engine).
"""

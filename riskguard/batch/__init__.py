"""Batch auditing: a policy over archives of snapshots, in parallel, summarised and reported.

``run`` streams records into chunks and evaluates them (``run_chunk``); ``parallel`` runs the
chunks in a process pool or on Dask, handed the chunk function by ``run`` (so the engines
never import the runner); ``tiermemo`` reads the tier tables an archive repeats once;
``summary`` folds decisions into counts and timelines; ``report`` renders Markdown and HTML.

May import: ``riskguard.errors``, ``riskguard.hookspecs``, ``riskguard.model``,
``riskguard.margin``, ``riskguard.engine``, ``riskguard.decisionlog``. Never a face.
"""

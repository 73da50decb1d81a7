"""One module per ``riskguard`` sub-command: ``add_parser(sub, name)`` and ``run(args)``."""

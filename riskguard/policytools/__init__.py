"""The tools around policies: test them, explain a decision, generate data, list the codes.

``testing`` runs a policy's YAML test cases (``riskguard test``), ``explain`` narrates a
decision rule by rule, ``generate`` makes synthetic snapshot streams, ``codes`` renders the
reason-code table of the docs from the code.

May import: every package below the faces, plus ``riskguard.faces.guard`` (a test case with
steps runs one long-lived Guard) and ``riskguard.faces.render`` (terminal styles).
"""

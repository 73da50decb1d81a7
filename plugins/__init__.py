"""Optional plugins that are not core: the ccxt integration and the plugin tutorial.

Load a plugin file with ``--plugin plugins/<name>.py`` (or ``Guard(..., plugins=[...])``);
import one from code as ``plugins.<name>`` when running from a checkout.
"""

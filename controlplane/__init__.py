"""Observability and autotuning control plane for LLM inference engines.

Layers (DESIGN.md; a lower layer never imports a higher one, import-linter checks it):
0 settings, domain, schemas; 1 store, engines, chaos; 2 guard (and the top-level
``collectors`` and ``tuner`` packages); 3 oncall, scheduler; 4 api, ui, cli.
"""

__version__ = "0.1.0"

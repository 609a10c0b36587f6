"""Benchmarks. Scripts in area folders run from the repository root as modules
(``python -m bench.AREA.NAME``), so they import each other and the project as packages."""

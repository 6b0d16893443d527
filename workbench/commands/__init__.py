"""The commands behind ``workbench`` (parsed and dispatched by workbench/cli.py), one module per kind of work:
``run`` (a run headless, its progress line and summary), ``inspect`` (presets, the data a config reads, the
runs folder, a finished run's predictions) and ``export`` (the student as GGUF, runs as TensorBoard files).
Each raises :class:`~workbench.errors.ConfigError` for what a user can fix; cli.py prints it.
"""

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

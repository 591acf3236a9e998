"""Per-server launchers for benchmarks/serving.py. Each module here runs as a script inside
the interpreter (or virtualenv) of the server it stands for; none imports the others."""

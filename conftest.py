# Doctests run over the package; the module that runs the CLI on import is not one.
collect_ignore = ["fractalscape/__main__.py"]

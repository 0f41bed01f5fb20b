"""Marks this project directory as a package, so mypy tells its __main__ from the main program's."""

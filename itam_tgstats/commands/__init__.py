"""The commands' faces: `show`, its dashboard, the dry run, the container's init, `--write-env`.

Nothing is handed on here: each face loads only its own dependencies (the dashboard loads
rich), so `cli` imports the module a command needs.
"""

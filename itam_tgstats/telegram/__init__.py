"""Telegram: the client and its few raw calls, downloads, session strings and the login.

Nothing is handed on here: importing `client` loads Pyrogram, which `show` never needs, so
each caller imports the module it uses.
"""

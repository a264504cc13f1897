"""Screens of the app, by area: run, sweep, history, help (and dialogs)."""

"""Widgets of the app, by area: form, plots (and run plots), summary/progress, navigation."""

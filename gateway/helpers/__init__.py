"""Helpers that do the boring parts of components: processors, exporters, shared receivers."""

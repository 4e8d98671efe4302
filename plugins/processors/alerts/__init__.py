"""Placeholder while the component is being built."""

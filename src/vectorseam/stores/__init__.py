"""Built-in stores and the registry that finds adapter plugins by name."""

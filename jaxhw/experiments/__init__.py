"""The homework's runs as library functions; the ``python -m jaxhw.*`` CLIs are thin wrappers over these."""

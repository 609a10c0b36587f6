"""Layer 4: the ``cplane`` command line; thin commands over the same functions the API uses."""

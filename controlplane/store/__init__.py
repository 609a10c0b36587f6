"""Layer 1: the SQL store. Repository functions take a session, ``add`` and ``flush``; the
caller (a route or a job) owns the transaction."""

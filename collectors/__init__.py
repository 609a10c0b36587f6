"""Layer 2: collectors of engine, GPU and host metrics into the SQL store."""

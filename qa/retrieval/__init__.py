"""Question analysis and hybrid retrieval: question → `Query` → scored passages."""

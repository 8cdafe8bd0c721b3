"""Real-time delivery: knows no HTTP and no services; moves encoded events in ``seq`` order."""

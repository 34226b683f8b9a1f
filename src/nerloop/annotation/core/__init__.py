"""What every annotation tool shares: the backend interface, batch planning, quality figures, the
decisions on finished work, and the life of a local server. A tool's folder adds only what differs."""

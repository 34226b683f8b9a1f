"""Choosing what to annotate next: scoring the pool with the model (locally or on Ray), uncertainty
measures, diversity, and the strategies that rank candidates. Above the model, below the loop."""

"""nerloop: grow a named-entity-recognition dataset with active learning."""

__version__ = "0.1.0"

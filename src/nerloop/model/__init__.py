"""The model layer: the base encoder (``base``), training (``training``), prediction (``inference``)
and the optional CRF head (``crf``). It knows records, tags and params, and nothing of the loop."""

"""The data layer, the ground floor: records and tags, tokenisers, the formats users bring and the
project's own files, the ledger of annotations and what is labelled. It imports nothing above it."""

"""Turn everything labelled into a publishable dataset: clean, deduplicate, check, split, count.

The release: pure functions on ``Record`` lists, used by the stages ``final-split``, ``final-evaluate``
and ``datacard``; nothing here reads params or touches disk (except ``to_dataset_dict``,
which only builds the object). The order of the work matters and is the order of the modules
(``gather``, ``clean``, ``split``; then ``card`` words the dataset card from what they counted):

1. ``gather``: seed, ledger and (optionally) gold records, each tagged with where it came
   from (``meta["origin"]``: seed | active | gold, and the annotation cycle).
2. ``clean``: Unicode NFKC and whitespace per token; tokens that are left empty go.
3. ``resolve_duplicates``: sentences with the same *dedup key* (the normalised text with
   case and spacing ignored, so ``p<0.05`` and ``P < 0.05`` meet) are one sentence. If
   the copies are labelled differently, that is an inconsistency, resolved by the policy
   (majority / latest) or held back for review, and always reported.
4. ``surface_conflicts``: the same entity string labelled as different types across the
   corpus. Reported always; under ``majority`` a string whose dominant type holds a clear
   share of its mentions gets that type everywhere (below the share, the ambiguity is
   taken as real: ``Washington`` can be a person and a place).
5. ``stratified_group_split``: sentences of one document stay together; entity types are
   spread over the splits in about the split ratios (iterative stratification, rarest
   type first, after Sechidis et al. 2011), deterministically under a seed.
6. ``split_stats`` / ``to_dataset_dict``: the numbers for the card and the HF dataset.
"""


"""The job of ``rules/generate.smk``: rule ``generate``, the biased random walk with restart
over a target's successor graph (:mod:`tokentransfer.walk`), its samples written as a sample set
(:mod:`tokentransfer.samples`).
"""

from __future__ import annotations

import time

from ..bars import DEFAULT_TOKENS_PER_BAR, SampleLength, tokens_per_bar
from ..samples import write_samples
from ..tokenize import corpus_tokens, load_tokenizer


def run_generate(
    *,
    tokenizer_json: str,
    successors_npz: str,
    nodes_h5: str | None,
    out_dir: str,
    cfg: dict,
    prompt_midi: str | None = None,
    context_npz: str | None = None,
    walk_npz: str | None = None,
    test_shards: list[str] | None = None,
    split_tsv: str | None = None,
    bits_tokens: int | None = None,
) -> dict:
    """Generate samples by the biased random walk with restart; write MIDI, tokens and a record.

    ``nodes_h5=None`` walks on the counts alone (the Markov chain of the counts).
    ``context_npz``: the successor counts per grammar context (default:
    ``context_successors.npz`` beside ``successors_npz``); unused with ``context: none``.
    ``walk_npz``: the walk's melody and form tables (default: ``walk_tables.npz`` beside
    ``successors_npz``); unused with ``melody: none`` and ``form: none``.
    With ``cfg``'s ``bars`` (``generate.bars`` > 0) every sample holds that many bars
    (:class:`tokentransfer.bars.SampleLength`; the token budget from the target's training
    pieces in ``test_shards`` / ``split_tsv``), else ``cfg``'s ``length`` tokens. The record
    gives ``setup_seconds`` (loading, the tables, the kernel's compilation by a one-token walk)
    and ``sample_seconds`` apart. With the target's ``test_shards`` and ``split_tsv``, the
    record also holds the walk's bits per token on its test pieces (at most ``bits_tokens``
    tokens; see :func:`tokentransfer.evaluate.heldout_bits`).
    """

    from ..runs import load_walker
    from ..tokenize import tokenize_file
    from ..walk import WalkConfig

    t_setup = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_json)
    walk_cfg = WalkConfig.from_section(cfg)
    length = SampleLength.from_section({"length": walk_cfg.length, **cfg})
    walker = load_walker(tokenizer, successors_npz, nodes_h5, walk_cfg, context_npz, walk_npz)
    prompt = tokenize_file(tokenizer, prompt_midi) if prompt_midi else None
    per_bar = DEFAULT_TOKENS_PER_BAR
    if length.bars and test_shards and split_tsv:
        per_bar = tokens_per_bar(corpus_tokens(test_shards, [split_tsv], "train"), walker.g.bar_id)
    walker.generate(n=1, length=1, prompt=prompt)  # compiles (or loads) the kernel: set-up
    setup_seconds = time.perf_counter() - t_setup

    def sample(n, tokens, seed, head):
        return walker.generate(n=n, length=tokens, prompt=head, seed=seed)

    t0 = time.perf_counter()
    samples, drawn = length.draw(
        sample, walk_cfg.samples, walk_cfg.seed, prompt, bar_id=walker.g.bar_id, per_bar=per_bar
    )
    seconds = time.perf_counter() - t0
    extra = {
        "parameters": walk_cfg.__dict__,
        "length": drawn,
        "biased": nodes_h5 is not None,
        "nodes": nodes_h5,
        "prompt": prompt_midi,
        "walk_stats": walker.last_stats,
    }
    if test_shards and split_tsv:
        from ..evaluate import heldout_bits
        from ..likelihood import walk_log_probs

        test = corpus_tokens(test_shards, [split_tsv], "test")
        extra.update(heldout_bits(lambda s: walk_log_probs(walker, s), test, bits_tokens))
    return write_samples(
        tokenizer, tokenizer_json, samples, out_dir, prompt, seconds, extra, setup_seconds
    )

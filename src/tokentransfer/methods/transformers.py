"""The methods that sample a transformer: the pretrained one (``transformer``), fine-tuned
(``finetuned``), fused with a chain or walk of the pieces (``fused_markov``, ``fused_walk``),
mixed with a kNN datastore (``knn``), with transplanted embeddings (``transplant``) and with
trained input embeddings or LoRA adapters (``embed_ft``, ``lora``); all under the grammar
mask, at the transformers' sampling settings."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from .registry import BUDGET, LINKPRED_KEYS, SAMPLING, WALK_KEYS, CannotFit, Env, Fitted, Method

log = logging.getLogger(__name__)


def _prompted(env: Env, draw: Callable[..., list[np.ndarray]]) -> Callable:
    """``sample(n, length, seed, prompt=None)`` of a transformer sampler
    ``draw(n, length, seed, start, temperature=, top_k=, device=, banned=)`` (e.g.
    :func:`tokentransfer.fusion.fused_samples` with its model and target bound): from BOS and
    Bar, or from BOS and ``prompt`` (returned in front of the samples), at
    ``sampling.temperature`` and ``top_k``, on ``env.device``, the special ids banned."""
    from ..baselines import start_tokens

    bos = env.special["bos"]

    def sample(n, length, seed, prompt=None):
        start = start_tokens(env.tokenizer) if prompt is None else [bos, *prompt]
        samples = draw(
            n,
            length,
            seed,
            start,
            temperature=env.sampling["temperature"],
            top_k=env.sampling["top_k"],
            device=env.device,
            banned=sorted(env.special.values()),
        )
        if prompt is not None:
            samples = [np.concatenate([prompt, s]) for s in samples]
        return samples

    return sample


def _transformer(model, env: Env, adapt_s: float, record: dict | None = None) -> Fitted:
    """A transformer sampled under the grammar mask (``sampling.temperature`` and ``top_k``),
    BOS and Bar first, or BOS and a prompt."""
    from ..baselines import transformer_samples
    from ..likelihood import transformer_log_probs

    bos = env.special["bos"]
    return Fitted(
        _prompted(env, partial(transformer_samples, model, grammar=env.grammar)),
        lambda s: transformer_log_probs(model, s, bos, env.grammar, env.device),
        {
            **(record or {}),
            "device": str(env.device),
            "temperature": env.sampling["temperature"],
            "top_k": env.sampling["top_k"],
            "grammar_mask": True,
        },
        adapt_s,
    )


class Transformer(Method):
    """The pretrained transformer, unadapted (the few-shot curve's reference line)."""

    name = "transformer"
    model = "pretrained"
    reads = SAMPLING

    def fit(self, pieces, env):
        return _transformer(env.load_model(), env, 0.0, {"model": str(env.model_dir)})


class Finetuned(Method):
    """The pretrained transformer fine-tuned on the pieces: for ``env.budget`` steps (the
    few-shot curve, resumable from its checkpoint), or already, by rule ``finetune`` (the
    evaluation: ``env.model_dir`` is the fine-tuned model)."""

    name = "finetuned"
    model = "finetuned"
    fewshot = "finetune"
    reads = {**SAMPLING, **BUDGET}

    def fit(self, pieces, env):
        from ..model import WindowSampler, context_length
        from ..model import train as train_model

        model = env.load_model()
        if env.budget is None:
            return _transformer(model, env, 0.0, {"model": str(env.model_dir)})
        checkpoint = env.checkpoint(self.name)
        sampler = WindowSampler(pieces, env.special, context_length(model), env.budget.seed)
        stats = train_model(model, sampler, env.budget, checkpoint=checkpoint, device=env.device)
        checkpoint.unlink(missing_ok=True)
        return _transformer(model, env, stats["seconds"])


#: order of the chain of ``fused_markov``
FUSED_ORDER = 2


class Fused(Method):
    """The unadapted transformer's logits plus lambda times ln q of the pieces' smoothed
    order-2 chain (``fused_markov``) or counts walk (``fused_walk``), under the grammar; lambda
    chosen on held-out groups of the pieces (:mod:`tokentransfer.fusion`)."""

    model = "pretrained"
    folder = None
    fewshot = "transfer"

    def __init__(self, name: str) -> None:
        self.name = name
        # in the evaluation (rule baseline) as well; not fused_walk, whose walk keys of the
        # generate section that rule does not pass
        self.folder = "baselines" if name == "fused_markov" else None
        if name == "fused_markov":
            self.reads = {**SAMPLING, "sampling": (*SAMPLING["sampling"], "markov_discount")}
        else:
            self.reads = {**SAMPLING, "generate": WALK_KEYS}

    def target_model(self, pieces, env):
        from ..fusion import chain_target, walk_target

        if self.name == "fused_markov":
            discount = env.sampling["markov_discount"]
            return chain_target(pieces, FUSED_ORDER, env.grammar, discount=discount)
        return walk_target(pieces, env.tokenizer, env.walk_config())

    def fit(self, pieces, env):
        from ..fusion import choose_lambda, fused_samples
        from ..likelihood import fused_log_probs

        model = env.load_model()
        bos = env.special["bos"]
        t0 = time.perf_counter()
        choice = choose_lambda(
            model,
            lambda f: self.target_model(f, env),
            pieces,
            bos=bos,
            seed=env.seed,
            groups=env.groups,
            device=env.device,
            max_tokens=env.eval.get("bits_tokens"),
        )
        target = self.target_model(pieces, env)
        adapt = time.perf_counter() - t0
        log.info("%s: lambda grid %s", self.name, choice.rows())

        sample = _prompted(env, partial(fused_samples, model, target, choice.lam))

        def log_probs(s):
            return fused_log_probs(model, target, s, [choice.lam], bos, env.grammar, env.device)[0]

        return Fitted(sample, log_probs, {"lambda": choice.lam}, adapt)


class Knn(Method):
    """kNN-LM (:mod:`tokentransfer.knn`): the unadapted transformer's next-token distribution
    mixed with the next tokens of the nearest of the pieces' stored hidden states,
    ``(1 - lam) p_T + lam p_knn``, under the grammar; the datastore from one forward pass
    over the pieces, ``lam`` and the distance temperature chosen on held-out groups of the
    pieces (``evaluate.knn``)."""

    name = "knn"
    model = "pretrained"
    fewshot = "transfer"
    reads = {**SAMPLING, "evaluate": (*SAMPLING["evaluate"], "knn")}

    def fit(self, pieces, env):
        from ..knn import (
            build_datastore,
            choose_knn,
            index_store,
            knn_log_probs,
            knn_samples,
            settings,
        )
        from ..knnindex import describe

        s = settings(env.eval.get("knn"))
        model = env.load_model()
        bos = env.special["bos"]
        t0 = time.perf_counter()
        store = build_datastore(model, pieces, bos, env.device)
        store = index_store(store, s, env.seed)
        choice = choose_knn(
            model,
            pieces,
            s["lambdas"],
            s["temperatures"],
            s["neighbours"],
            bos=bos,
            grammar=env.grammar,
            seed=env.seed,
            groups=env.groups,
            device=env.device,
            max_tokens=s["choice_tokens"],
            store=store,
        )
        store = store.to(s["dtype"])
        adapt = time.perf_counter() - t0
        log.info("knn: %d keys (%.1f MB), grid %s", len(store), store.megabytes, choice.rows())
        lam, temp, k = choice.lam, choice.temperature, s["neighbours"]

        draw = partial(knn_samples, model, store, lam, temp, k, grammar=env.grammar)
        sample = _prompted(env, draw)

        def log_probs(seq):
            lp = knn_log_probs(model, store, seq, [(lam, temp)], k, bos, env.grammar, env.device)
            return lp[0]

        record = {
            "lambda": lam,
            "knn_temperature": temp,
            "neighbours": k,
            "datastore_keys": len(store),
            "datastore_mb": round(store.megabytes, 3),
            "datastore_dtype": s["dtype"],
            "datastore_seconds": round(store.seconds, 4),
            "choice_seconds": round(choice.seconds, 4),
            **describe(store.index),
            "device": str(env.device),
            "temperature": env.sampling["temperature"],
            "top_k": env.sampling["top_k"],
            "grammar_mask": True,
        }
        return Fitted(sample, log_probs, record, adapt)


class Transplant(Method):
    """A graph network trained on the base corpus's graph and adapted on the pieces', its node
    embeddings put into the frozen transformer's input table through a ridge map fitted on
    the base (:mod:`tokentransfer.transplant`); its adaptation seconds are the per-target
    part."""

    name = "transplant"
    model = "pretrained"
    base = True
    folder = None
    fewshot = "transfer"
    reads = {**SAMPLING, "graph": ("offset_weights",), "linkpred": LINKPRED_KEYS}

    def fit(self, pieces, env):
        from ..embed import token_table
        from ..transplant import fit_map, transplant, transplant_embeddings

        model0 = env.load_model()
        base = env.base_pieces("train")
        hp = env.linkpred
        t0 = time.perf_counter()
        try:
            ge, _ = transplant_embeddings(
                base,
                pieces,
                token_table(model0),
                hp,
                offset_weights=tuple(env.graph["offset_weights"]),
                encoder=hp["encoders"][0],
                seed=hp["seeds"][0],
            )
        except ValueError as exc:  # a subset graph too small to split into pairs
            raise CannotFit(f"no graph network ({exc})") from exc
        t1 = time.perf_counter()
        table = token_table(model0)
        model = copy.deepcopy(model0)
        emb_map = fit_map(ge.h_base, ge.base_ids, table)
        transplant(model, ge.h_target, ge.target_ids, emb_map)
        adapt = ge.target_seconds + time.perf_counter() - t1
        log.info(
            "transplant: base network %.1f s (val AUC %.3f), map R2 %.3f (held out %.3f), "
            "target val AUC %.3f -> %.3f, %d rows, %.1f s in all",
            ge.base_seconds,
            ge.base_val_auc,
            emb_map.r2,
            emb_map.r2_heldout,
            ge.target_val_auc_before,
            ge.target_val_auc,
            len(ge.target_ids),
            time.perf_counter() - t0,
        )
        return _transformer(model, env, adapt)


class Adapter(Method):
    """The input embedding table alone (``embed_ft``) or LoRA adapters (``lora``) trained on
    the pieces for ``env.budget`` steps, the rest of the transformer frozen."""

    model = "pretrained"
    folder = None
    fewshot = "transfer"

    reads = {**SAMPLING, **BUDGET}

    def __init__(self, name: str) -> None:
        self.name = name

    def fit(self, pieces, env):
        from ..transplant import embedding_finetune, lora_finetune

        model = env.load_model()
        checkpoint = env.checkpoint(self.name)
        if self.name == "embed_ft":
            stats = embedding_finetune(
                model, pieces, env.special, env.budget, checkpoint, device=env.device
            )
        else:
            peft_model, stats = lora_finetune(
                model, pieces, env.special, env.budget, checkpoint, device=env.device
            )
            model = peft_model.merge_and_unload()
        checkpoint.unlink(missing_ok=True)
        return _transformer(model, env, stats["seconds"])

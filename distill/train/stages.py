"""The four stages of Ding et al. (2022), each a function of the `Run` that trains and saves its model:
1. multilingual KD T -> A, 2. the bottleneck-embedding student, 3. parameter recurrence,
4. multilingual contrastive learning."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import torch

from distill.config import ConfigError, EmbeddingInit, Stage3Variant
from distill.data import TrainingPair
from distill.fileio import atomic_open
from distill.losses import ContrastiveLoss, PairMSELoss
from distill.models import (
    Encoder,
    mean_pool,
    read_layout,
    register_student,
    resolve_model,
    write_sentence_transformers_files,
)
from distill.student import (
    XLSearchRecurrentConfig,
    XLSearchRecurrentModel,
    effective_parameters,
    stored_parameters,
)
from distill.student.export import save_student
from distill.student.untrim import TABLE, assistant_rows, with_token_rows
from distill.train import distributed, layerwise
from distill.train.closed_form import bridge_gap, closed_form_start
from distill.train.loop import LoopResult
from distill.train.state import STAGE_TITLES, Run, RunError
from distill.train.windows import read_windows
from distill.vocab import count_token_ids, select_vocab, trim_tokenizer


def _texts_index(
    run: Run, pairs: list[TrainingPair], side: str
) -> tuple[list[tuple[str | None, str]], np.ndarray]:
    """Unique (role, text) items of one side and, per pair, the row of its item (targets are cached per text)."""
    rows: dict[tuple[str | None, str], int] = {}
    index = np.array(
        [rows.setdefault((run.role(p), getattr(p, side)), len(rows)) for p in pairs], dtype=np.int64
    )
    return list(rows), index


def _assistant_targets(run: Run, a_spec: str, pairs: list[TrainingPair]) -> tuple:
    """A's vectors of the pairs' en and xx texts and each pair's row in them (stage 3's targets)."""
    en_texts, en_row = _texts_index(run, pairs, "en")
    xx_texts, xx_row = _texts_index(run, pairs, "xx")
    return (
        run.targets(a_spec, en_texts, "A(en) targets"),
        en_row,
        run.targets(a_spec, xx_texts, "A(xx) targets"),
        xx_row,
    )


def _embed_pairs(run: Run, enc: Encoder, batch: list[TrainingPair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of the en and the xx side, each with its role's prompt, from one padded forward
    (fewer, larger matmuls are faster on CPU)."""
    texts = [
        enc.prompt(run.role(p)) + t
        for side in ("en", "xx")
        for p, t in ((p, getattr(p, side)) for p in batch)
    ]
    emb = enc.forward(enc.tokenize(texts, None))
    return emb[: len(batch)], emb[len(batch) :]


def _target_rows(targets: np.ndarray, rows: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """Rows of a (memory-mapped) target array as a tensor on `like`'s device."""
    return torch.from_numpy(np.asarray(targets[rows])).to(like.device)


def _finish_stage(run: Run, n: int, result: LoopResult, extra: dict) -> dict:
    losses = [v for _, v in result.losses]
    k = max(1, min(10, len(losses) // 5))
    info = {
        "stage": n,
        "title": STAGE_TITLES[n],
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "resumed_from_step": result.resumed_from,
        "loss_first": float(np.mean(losses[:k])) if losses else None,
        "loss_last": float(np.mean(losses[-k:])) if losses else None,
        "losses": result.losses,
        **extra,
    }
    return info


def write_stage_info(run: Run, n: int, info: dict) -> None:
    if distributed.is_main():
        (run.stage_dir(n) / "stage.json").write_text(json.dumps(info, indent=1))
        run.checkpoint(n).unlink(missing_ok=True)
        run.log.write(event="stage_done", **{k: v for k, v in info.items() if k not in ("losses", "dev")})


# --- stage 1 -------------------------------------------------------------------------------------


def stage1(run: Run) -> dict:
    """A learns T's space: MSE(A(en), T(en)) + MSE(A(xx), T(en))."""
    cfg, out = run.cfg, run.stage_dir(1)
    pairs = run.pairs(1)
    en_texts, en_row = _texts_index(run, pairs, "en")
    t_en = run.targets(cfg.models.teacher, en_texts, "T(en) targets")
    assistant = run.encoder(cfg.models.assistant)
    if len(getattr(assistant, "dense", ())):  # stage 1 trains and saves the transformer only
        raise ConfigError(f"assistant {cfg.models.assistant} has Dense layers; use a model without them as A")
    if assistant.dim != t_en.shape[1]:
        raise ConfigError(f"T ({t_en.shape[1]}-d) and A ({assistant.dim}-d) must have the same dimension")
    model = assistant.model
    if cfg.stage1.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    assistant.model = distributed.wrap(model)
    loss_fn = PairMSELoss()

    def compute_loss(idx: np.ndarray):
        en, xx = _embed_pairs(run, assistant, [pairs[i] for i in idx])
        target = _target_rows(t_en, en_row[idx], en)
        return loss_fn(en, xx, target, target)

    result = run.train(1, model, compute_loss, len(pairs))
    if distributed.is_main():
        layout = read_layout(resolve_model(cfg.models.assistant))
        model.save_pretrained(out)
        assistant.tokenizer.save_pretrained(out)
        write_sentence_transformers_files(
            out,
            dim=assistant.dim,
            pooling=layout.pooling.value,
            normalize=layout.normalize,
            prompts=layout.prompts,
            max_seq_length=layout.max_seq_length or 512,
        )
    return _finish_stage(
        run,
        1,
        result,
        {"pairs": len(pairs), "assistant": cfg.models.assistant, "stored_params": stored_parameters(model)},
    )


# --- stage 2 -------------------------------------------------------------------------------------


def build_vocab(run: Run, assistant: Encoder) -> tuple[list[int] | None, object, dict]:
    """Trimmed ids + tokenizer (or the full ones when trimming is off), and a report."""
    tokenizer = assistant.tokenizer
    if not run.cfg.vocab.trim:
        return None, tokenizer, {"vocab_trimmed": False, "vocab_size": len(tokenizer)}
    pairs = run.all_pairs()  # every training pair, not just the sample, so more words are covered
    texts = sorted({p.en for p in pairs} | {p.xx for p in pairs})
    counts = count_token_ids(tokenizer, texts, prompt=assistant.prompt(run.prefix))
    kept = select_vocab(
        tokenizer,
        counts,
        min_count=run.cfg.vocab.min_count,
        keep_single_chars=run.cfg.vocab.keep_single_chars,
        max_pieces=run.cfg.vocab.max_pieces,
    )
    trimmed = trim_tokenizer(tokenizer, kept)
    report = {
        "vocab_trimmed": True,
        "vocab_size": len(kept),
        "vocab_full": len(tokenizer),
        "vocab_seen_in_data": len(counts),
        "vocab_texts": len(texts),
    }
    return kept, trimmed, report


def init_student(run: Run, a_model, kept: list[int] | None) -> XLSearchRecurrentModel:
    """S: bottleneck embeddings (SVD of A's rows, or random) + A's chosen layers; passes = 0 for now.

    With embedding_size = A's hidden size the SVD start reproduces A's rows exactly (no bottleneck).
    """
    s, ac = run.cfg.student, a_model.config
    layer_ids = s.layer_ids()
    if max(layer_ids) >= ac.num_hidden_layers:
        raise ConfigError(f"student.layers = {s.layers} but A has only layers 0..{ac.num_hidden_layers - 1}")
    word = a_model.get_input_embeddings().weight.detach()
    if kept is not None:
        word = word[torch.as_tensor(kept)]
    config = XLSearchRecurrentConfig(
        vocab_size=word.shape[0],
        embedding_size=s.embedding_size,
        hidden_size=ac.hidden_size,
        num_hidden_layers=len(layer_ids),
        num_passes=0,
        num_attention_heads=ac.num_attention_heads,
        intermediate_size=ac.intermediate_size,
        hidden_act=ac.hidden_act,
        hidden_dropout_prob=ac.hidden_dropout_prob,
        attention_probs_dropout_prob=ac.attention_probs_dropout_prob,
        max_position_embeddings=ac.max_position_embeddings,
        type_vocab_size=ac.type_vocab_size,
        layer_norm_eps=ac.layer_norm_eps,
        position_offset=(ac.pad_token_id + 1) if ac.model_type in ("roberta", "xlm-roberta") else 0,
        pad_token_id=(kept.index(ac.pad_token_id) if kept else ac.pad_token_id),
        bridge_after=bridge_gap(layer_ids)[0] if s.bridge else -1,
        output_map=s.output_map,
    )
    torch.manual_seed(run.cfg.seed)
    student = XLSearchRecurrentModel(config)
    emb = student.embeddings
    with torch.no_grad():
        if s.init == EmbeddingInit.SVD:
            # W (V x h) ~ U_e S_e V_e^T: rows U_e sqrt(S_e), projection sqrt(S_e) V_e^T.
            u, sv, vt = torch.linalg.svd(word.float(), full_matrices=False)
            e = min(s.embedding_size, sv.shape[0])
            root = sv[:e].sqrt()
            emb.word_embeddings.weight.zero_()
            emb.word_embeddings.weight[:, :e] = u[:, :e] * root
            emb.word_projection.weight.zero_()
            emb.word_projection.weight[:, :e] = (root[:, None] * vt[:e]).T
        a_emb = a_model.embeddings
        emb.position_embeddings.weight.copy_(a_emb.position_embeddings.weight)
        emb.token_type_embeddings.weight.copy_(a_emb.token_type_embeddings.weight)
        emb.LayerNorm.load_state_dict(a_emb.LayerNorm.state_dict())
        for i, a_layer in enumerate(layer_ids):
            missing = student.layers[i].load_state_dict(
                a_model.encoder.layer[a_layer].state_dict(), strict=False
            )
            if missing.missing_keys:
                raise RuntimeError(
                    f"A's layer {a_layer} does not fit the student layer: {missing.missing_keys}"
                )
    return student


def student_encoder(run: Run, student: XLSearchRecurrentModel, tokenizer, prompts: dict) -> Encoder:
    enc = Encoder(
        student, tokenizer, prompts=prompts, max_seq_length=run.cfg.data.max_seq_length, name="student"
    )
    return enc


def save_stage_student(
    run: Run, n: int, student, tokenizer, prompts: dict, extra_files: dict | None = None
) -> None:
    if not distributed.is_main():
        return
    save_student(
        distributed.unwrap(student), tokenizer, run.stage_dir(n), prompts=prompts, max_seq_length=512
    )
    for name, obj in (extra_files or {}).items():
        (run.stage_dir(n) / name).write_text(json.dumps(obj))


def _closed_form(
    run: Run,
    student: XLSearchRecurrentModel,
    s_enc: Encoder,
    assistant: Encoder,
    a_spec: str,
    pairs: list[TrainingPair],
) -> dict:
    """The bridge and output map fitted at the end of stage 2, on stage 2's own texts."""
    items = [(run.role(p), t) for p in pairs for t in (p.en, p.xx)]
    targets = None
    if run.cfg.student.output_map:  # stage 3's own targets (cached): A encodes each text once
        a_en, en_row, a_xx, xx_row = _assistant_targets(run, a_spec, pairs)
        targets = np.stack([a_en[en_row], a_xx[xx_row]], axis=1).reshape(len(items), -1)
    return closed_form_start(run, student, s_enc, assistant, items, targets)


def stage2(run: Run) -> dict:
    """Bottleneck embedding: pool(E_S(x)) ~ pool(E_A(x)) for x in {en, xx}."""
    a_spec = run.assistant_spec()
    assistant = run.frozen(a_spec)  # S copies from A; A itself is never trained here
    a_model = assistant.model.eval()
    prompts = read_layout(resolve_model(a_spec)).prompts
    kept, tokenizer, vocab_report = build_vocab(run, assistant)
    student = init_student(run, a_model, kept)
    if run.cfg.vocab.untrim:  # S reads A's ids from here on, in training as in serving
        rows = assistant_rows(a_model, assistant.tokenizer)  # the table is kept for --resume (minutes)
        table = run.run_dir / TABLE
        student = with_token_rows(student, np.asarray(kept), rows, table=table, save=distributed.is_main())
        tokenizer = assistant.tokenizer
        vocab_report["vocab_untrimmed"] = True
    student = student.to(run.device)
    for p in student.layers.parameters():  # stage 2 trains the embeddings only
        p.requires_grad_(False)
    pairs = run.pairs(2)
    s_enc = student_encoder(run, student, tokenizer, prompts)
    wrapped = distributed.wrap(student.embeddings)
    loss_fn = PairMSELoss()

    def pooled(embed, batch) -> torch.Tensor:
        batch = {k: v.to(run.device) for k, v in batch.items()}
        return mean_pool(embed(batch["input_ids"], batch.get("token_type_ids")), batch["attention_mask"])

    def a_embed(ids, types):
        return a_model.embeddings(input_ids=ids, token_type_ids=types)

    def compute_loss(idx: np.ndarray):
        batch = [pairs[i] for i in idx]
        texts = [p.en for p in batch] + [p.xx for p in batch]
        s = pooled(wrapped, s_enc.tokenize(texts, run.prefix))
        with torch.no_grad():
            a = pooled(a_embed, assistant.tokenize(texts, run.prefix))
        b = len(batch)
        return loss_fn(s[:b], s[b:], a[:b], a[b:])

    result = run.train(2, student, compute_loss, len(pairs))
    for p in student.layers.parameters():
        p.requires_grad_(True)
    if run.cfg.student.bridge or run.cfg.student.output_map:
        vocab_report |= _closed_form(run, student, s_enc, assistant, a_spec, pairs)
    save_stage_student(run, 2, student, tokenizer, prompts, {"vocab.json": {"kept_ids": kept}})
    params = stored_parameters(student)
    return _finish_stage(
        run,
        2,
        result,
        {
            "pairs": len(pairs),
            "train_langs": len({p.lang for p in run.all_pairs()}),
            "init": run.cfg.student.init.value,
            **vocab_report,
            "stored_params": params,
            "assistant": a_spec,
            "assistant_params": stored_parameters(a_model),  # A as S was built from it (after stage 1)
        },
    )


# --- stages 3 and 4 ------------------------------------------------------------------------------


def load_stage_student(run: Run, n: int) -> tuple[XLSearchRecurrentModel, object, dict, Encoder]:
    """The student saved by stage `n`, with the run's passes, and a trainable encoder around it."""
    from transformers import AutoTokenizer

    if not run.done(n):
        raise RunError(f"stage {n} has not completed; run it first")
    path = run.stage_dir(n)
    student = XLSearchRecurrentModel.from_pretrained(path).to(run.device)
    student.config.num_passes = run.cfg.student.passes
    if run.cfg.student.freeze_embeddings:
        student.embeddings.word_embeddings.weight.requires_grad_(False)
    register_student()  # the tokenizer may read config.json: resolve its model_type to the installed code
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    prompts = read_layout(path).prompts
    s_enc = student_encoder(run, student, tokenizer, prompts)
    s_enc.model = distributed.wrap(student)
    return student, tokenizer, prompts, s_enc


def stage3(run: Run) -> dict:
    """Recurrence: S = embeddings + (L1..Lk) x r, trained with MSE(S(en), A(en)) + MSE(S(xx), A(xx))."""
    if run.cfg.stage3.variant == Stage3Variant.LAYERWISE:
        return stage3_layerwise(run)
    student, tokenizer, prompts, s_enc = load_stage_student(run, 2)
    a_spec = run.assistant_spec()
    pairs = run.pairs(3)
    a_en, en_row, a_xx, xx_row = _assistant_targets(run, a_spec, pairs)
    loss_fn = PairMSELoss()

    def compute_loss(idx: np.ndarray):
        en, xx = _embed_pairs(run, s_enc, [pairs[i] for i in idx])
        return loss_fn(en, xx, _target_rows(a_en, en_row[idx], en), _target_rows(a_xx, xx_row[idx], en))

    result = run.train(
        3, student, compute_loss, len(pairs), pairs, curve=student_encoder(run, student, tokenizer, prompts)
    )
    save_stage_student(run, 3, student, tokenizer, prompts)
    return _finish_stage(
        run,
        3,
        result,
        {
            "pairs": len(pairs),
            "stored_params": stored_parameters(student),
            "effective_params": effective_parameters(student),
        },
    )


def stage3_layerwise(run: Run) -> dict:
    """Stage 3, variant layerwise (layerwise.py): frozen prefix cached, the layers above trained on
    A's token states and the teacher's scores of cross-lingual pseudo-queries."""
    cfg, st = run.cfg, run.cfg.stage3
    student, tokenizer, prompts, _ = load_stage_student(run, 2)
    plain = student_encoder(run, student, tokenizer, prompts)
    d = cfg.data
    windows = read_windows(
        d.passage_file,
        d.passage_doc_ids,
        st.window_langs,
        sentences=d.passage_sentences,
        group=st.window_group,
        seed=cfg.seed,
    ).sample(st.max_windows, cfg.seed)
    a_layers = cfg.student.layer_ids()[st.frozen_layers :]
    states = _layerwise_states(run, student, plain, windows, a_layers)
    for p in student.parameters():
        p.requires_grad_(False)
    top = layerwise.TopLayers(student.layers[st.frozen_layers :])
    for p in top.parameters():
        p.requires_grad_(True)
    wrapped = distributed.wrap(top)
    loss_fn = layerwise.LayerwiseLoss(
        tokens=st.weight_tokens,
        layers=st.weight_layers,
        scores=st.weight_scores,
        pooled=st.weight_pooled,
        temperature=st.kl_temperature,
    )

    def compute_loss(idx: np.ndarray):
        q, p = layerwise.batch_parts(states, windows, idx, run.device)
        return loss_fn(wrapped(q.inputs, q.mask), q, wrapped(p.inputs, p.mask), p)

    result = run.train(3, student, compute_loss, len(windows.groups), curve=plain)
    save_stage_student(run, 3, student, tokenizer, prompts)
    return _finish_stage(
        run,
        3,
        result,
        {
            "variant": st.variant.value,
            "pairs": len(windows),
            "windows": len(windows),
            "window_langs": list(windows.langs),
            "groups": len(windows.groups),
            "frozen_layers": st.frozen_layers,
            "stored_params": stored_parameters(student),
            "effective_params": effective_parameters(student),
        },
    )


def _layerwise_states(run: Run, student, s_enc: Encoder, windows, a_layers: list[int]) -> dict:
    """The windows' frozen-prefix outputs and A's targets: computed once per run, kept beside the
    checkpoint so a resumed stage does not recompute them."""
    path = run.run_dir / "stage3.states.pt"
    if run.resume and path.exists():
        raw = torch.load(path, weights_only=True)
        return {k: layerwise.TokenStates(**v) for k, v in raw.items()}
    assistant = run.frozen(run.assistant_spec())
    student.eval()
    states = layerwise.window_states(
        student,
        s_enc,
        assistant,
        windows,
        frozen=run.cfg.stage3.frozen_layers,
        a_layers=a_layers,
        batch_size=run.cfg.data.encode_batch_size,
    )
    if distributed.is_main():
        with atomic_open(path) as f:
            torch.save({k: vars(v) for k, v in states.items()}, f)
    return states


def stage4(run: Run) -> dict:
    """Multilingual contrastive learning against T (variant mcl / infonce / bool / mse)."""
    cfg, st = run.cfg, run.cfg.stage4
    prev = 3 if cfg.stage3.enabled else 2
    student, tokenizer, prompts, s_enc = load_stage_student(run, prev)
    pairs = run.pairs(4)
    en_texts, en_row = _texts_index(run, pairs, "en")
    t_en = run.targets(cfg.models.teacher, en_texts, "T(en) targets")
    loss_fn = ContrastiveLoss.from_config(st)
    t_xx = xx_row = None
    if loss_fn.needs_t_xx:  # the teacher's in-batch scores need its view of xx too
        xx_texts, xx_row = _texts_index(run, pairs, "xx")
        t_xx = run.targets(cfg.models.teacher, xx_texts, "T(xx) targets")

    def compute_loss(idx: np.ndarray):
        en, xx = _embed_pairs(run, s_enc, [pairs[i] for i in idx])
        target_xx = None if t_xx is None else _target_rows(t_xx, xx_row[idx], en)
        return loss_fn(en, xx, _target_rows(t_en, en_row[idx], en), target_xx)

    result = run.train(
        4, student, compute_loss, len(pairs), pairs, curve=student_encoder(run, student, tokenizer, prompts)
    )
    save_stage_student(run, 4, student, tokenizer, prompts)
    return _finish_stage(
        run,
        4,
        result,
        {
            "pairs": len(pairs),
            "variant": st.variant.value,
            "stored_params": stored_parameters(student),
            "effective_params": effective_parameters(student),
        },
    )


STAGE_FUNCS: dict[int, Callable[[Run], dict]] = {1: stage1, 2: stage2, 3: stage3, 4: stage4}

"""The PyTorch reference of bedside's clinical model, for `make bench`.

The same architecture as `src/model/` -- the T5 language model (transformers' own
T5ForConditionalGeneration), the PatchTST-style series encoder (burn's pre-norm transformer
encoder layer), the knowledge-augmented attention, the channel-token placement and the phenotype
head -- written independently in PyTorch, loaded with the bundle's own weights. It reads the
tensors `bedside-train bench --inputs` timed and wrote, checks that it computes the same phenotype
probabilities bedside did (the architecture really is the same), then times the same work in
eager mode on the CPU with the same thread count:

  inference   encoder + phenotype head at batch 1 and 32; greedy generation of N tokens with and
              without the key/value cache; the encoder on prompts of 128 .. 1,600 tokens;
              generation of 16 / 64 / 256 tokens
  training    one AdamW step (grad-norm clipping, weight decay) of each ClinRaGen stage, with the
              stage's freezing, on the batch bedside timed (fresh random weights, as bedside's)

Run (make bench does): python bench/reference.py --bundle models/demo
      --inputs target/bench/inputs.safetensors --threads 1 --out target/bench/pytorch.json
Needs torch, transformers<5, safetensors (make bench installs them into target/pyref).
"""
import argparse
import json
import math
import pathlib
import platform
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import T5Config, T5ForConditionalGeneration


class SeriesLayer(nn.Module):
    """burn's TransformerEncoderLayer with norm_first: norm_2 before attention, norm_1 before the
    feed-forward; GELU (exact); dropout on the attention weights, after the attention and after
    the feed-forward's activation and output."""

    def __init__(self, d, heads, d_ff, dropout):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.output = (nn.Linear(d, d) for _ in range(4))
        self.norm_1, self.norm_2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        self.linear_inner, self.linear_outer = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.dropout = nn.Dropout(dropout)

    def attention(self, x):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        weights = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d // self.heads), dim=3)
        context = (self.dropout(weights) @ v).transpose(1, 2).reshape(b, n, d)
        return self.output(context)

    def forward(self, x):
        x = x + self.dropout(self.attention(self.norm_2(x)))
        ff = self.linear_outer(self.dropout(F.gelu(self.linear_inner(self.norm_1(x)))))
        return x + self.dropout(ff)


class SeriesEncoder(nn.Module):
    def __init__(self, c, dropout):
        super().__init__()
        self.patch_len, self.stride = c["patch_len"], c["stride"]
        patches = (c["hours"] - c["patch_len"]) // c["stride"] + 1
        self.patch_embedding = nn.Linear(2 * c["patch_len"], c["d_model"])
        self.position = nn.Parameter(torch.randn(patches, c["d_model"]) * 0.02)
        self.channel_embedding = nn.Embedding(c["channels"], c["d_model"])
        self.layers = nn.ModuleList(SeriesLayer(c["d_model"], c["n_heads"], c["d_ff"], dropout) for _ in range(c["n_layers"]))

    def forward(self, values, observed):
        b, c, _ = values.shape
        patches = torch.cat([values.unfold(2, self.patch_len, self.stride), observed.unfold(2, self.patch_len, self.stride)], 3)
        x = patches.reshape(b * c, patches.shape[2], patches.shape[3])
        x = self.patch_embedding(x) + self.position
        for layer in self.layers:
            x = layer(x)
        return x.mean(1).reshape(b, c, -1) + self.channel_embedding.weight[None]


class KnowledgeAttention(nn.Module):
    def __init__(self, d_series, d_model, tokens, prototypes, heads, dropout):
        super().__init__()
        self.heads = heads
        self.register_buffer("knowledge", torch.randn(tokens, d_model))
        self.mapping = nn.Linear(tokens, prototypes)
        self.query = nn.Linear(d_series, d_model)
        self.key, self.value, self.out = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, channels):
        b, n, _ = channels.shape
        prototypes = self.mapping(self.knowledge.T).T
        q = self.query(channels)
        inner = q.shape[2]
        e = inner // self.heads
        q = q.view(b, n, self.heads, e).transpose(1, 2)
        k = self.key(prototypes).view(1, -1, self.heads, e).transpose(1, 2)
        v = self.value(prototypes).view(1, -1, self.heads, e).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(e), dim=3)
        context = (self.dropout(weights) @ v).transpose(1, 2).reshape(b, n, inner)
        return self.out(context), weights


class Clinical(nn.Module):
    def __init__(self, config):
        super().__init__()
        t = config["t5"]
        self.t5 = T5ForConditionalGeneration(T5Config(
            vocab_size=t["vocab_size"], d_model=t["d_model"], d_kv=t["d_kv"], d_ff=t["d_ff"],
            num_layers=t["num_layers"], num_decoder_layers=t["num_decoder_layers"], num_heads=t["num_heads"],
            relative_attention_num_buckets=t["relative_attention_num_buckets"],
            relative_attention_max_distance=t["relative_attention_max_distance"],
            layer_norm_epsilon=float(t["layer_norm_epsilon"]), dropout_rate=t["dropout_rate"],
            feed_forward_proj="gated-gelu" if t["feed_forward"] == "GatedGelu" else "relu",
            tie_word_embeddings=t["tie_word_embeddings"], pad_token_id=t["pad_token_id"],
            eos_token_id=t["eos_token_id"], decoder_start_token_id=t["decoder_start_token_id"]))
        s = config["series"]
        self.series = SeriesEncoder(s, s["dropout"])
        self.knowledge = KnowledgeAttention(s["d_model"], t["d_model"], config["knowledge_tokens"], config["prototypes"],
                                            config["knowledge_heads"], t["dropout_rate"])
        self.head_hidden = nn.Linear(t["d_model"] * (1 + s["channels"]), config["head_hidden"])
        self.head_output = nn.Linear(config["head_hidden"], config["phenotypes"])
        # the wide half (src/model/wide.rs): a binary bag of the prompt's tokens, per-channel summaries
        self.wide = bool(config.get("wide"))
        if self.wide:
            self.wide_words = nn.Embedding(t["vocab_size"], config["phenotypes"])
            self.wide_labs = nn.Linear(s["channels"] * 5, config["phenotypes"])

    def wide_logits(self, ids, lengths, values, observed):
        """As WideHead::words + WideHead::labs: each distinct real token once; min, max, mean, last
        value and share of hours observed per channel, values clipped to +-10."""
        out = 0
        if ids is not None:
            length = ids.shape[1]
            mask = (torch.arange(length)[None] < lengths[:, None]).float()
            earlier = torch.tril(torch.ones(length, length), diagonal=-1)
            same = (ids[:, :, None] == ids[:, None, :]).float()
            repeat = (same * earlier * mask[:, None, :]).amax(2)
            out = out + (self.wide_words(ids) * (mask * (1 - repeat))[..., None]).sum(1)
        if values is not None:
            v = values.clamp(-10, 10) * observed
            count = observed.sum(2, keepdim=True)
            seen = count.clamp(max=1)
            far = (1 - observed) * 20
            hour = torch.arange(1, values.shape[2] + 1, dtype=values.dtype)
            last = v.gather(2, (observed * hour).argmax(2, keepdim=True))
            summaries = torch.cat([(v + far).amin(2, keepdim=True) * seen, (v - far).amax(2, keepdim=True) * seen,
                                   v.sum(2, keepdim=True) / count.clamp(min=1), last, count / values.shape[2]], 2)
            out = out + self.wide_labs(summaries.flatten(1))
        return out

    def encode(self, ids=None, lengths=None, values=None, observed=None):
        """As ClinicalModel::encode: each row's prompt tokens, then its channel tokens, then padding."""
        channels = None
        if values is not None:
            channel_mask = observed.amax(2)
            channel_tokens, _ = self.knowledge(self.series(values, observed))
            n = channel_tokens.shape[1]
        if ids is None:
            embeddings, mask = channel_tokens, channel_mask
            start = torch.zeros(values.shape[0], dtype=torch.long)
        else:
            b, length = ids.shape
            text = self.t5.shared(ids)
            text_mask = (torch.arange(length)[None] < lengths[:, None]).float()
            embeddings, mask, start = text, text_mask, lengths.clamp(max=length)
            if values is not None:
                i = torch.arange(length + n)[None].expand(b, -1)
                l = start[:, None]
                index = torch.where(i < l, i, torch.where(i < l + n, length + i - l, torch.full_like(i, length - 1)))
                embeddings = torch.cat([text, channel_tokens], 1).gather(1, index[..., None].expand(-1, -1, text.shape[2]))
                mask = torch.cat([text_mask, channel_mask], 1).gather(1, index)
        hidden = self.t5.encoder(inputs_embeds=embeddings, attention_mask=mask).last_hidden_state
        if values is not None:
            index = start[:, None] + torch.arange(n)[None]
            channels = (hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[2])), channel_mask)
        wide = self.wide_logits(ids, lengths, values, observed) if self.wide else None
        return hidden, mask, channels, wide

    def phenotype_logits(self, hidden, mask, channels, wide=None):
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        if channels is None:
            per_channel = torch.zeros(pooled.shape[0], self.head_hidden.in_features - pooled.shape[1])
        else:
            per_channel = (channels[0] * channels[1][..., None]).flatten(1)
        deep = self.head_output(F.gelu(self.head_hidden(torch.cat([pooled, per_channel], 1))))
        return deep if wide is None else deep + wide


def t5_name(name):
    """bedside's T5 parameter name -> transformers' (and whether the matrix is transposed)."""
    parts = name.split(".")[1:]
    if parts[0] in ("shared",):
        return "shared.weight", False
    if parts[0] == "lm_head":
        return "lm_head.weight", True
    if parts[0] in ("encoder_norm", "decoder_norm"):
        return f"{parts[0][:-5]}.final_layer_norm.weight", False
    side, block, sub = parts[0], parts[1], parts[2]
    layers = {
        "encoder": {"attention": "0.SelfAttention", "attention_norm": "0.layer_norm", "ff": "1.DenseReluDense", "ff_norm": "1.layer_norm"},
        "decoder": {"self_attention": "0.SelfAttention", "self_attention_norm": "0.layer_norm", "cross_attention": "1.EncDecAttention",
                    "cross_attention_norm": "1.layer_norm", "ff": "2.DenseReluDense", "ff_norm": "2.layer_norm"},
    }[side]
    prefix = f"{side}.block.{block}.layer.{layers[sub]}"
    if sub.endswith("norm"):
        return f"{prefix}.weight", False
    leaf = {"wi": "wi_0", "wi_linear": "wi_1"}.get(parts[3], parts[3])
    return f"{prefix}.{leaf}.weight", leaf != "relative_attention_bias"


def load_weights(model, path):
    """Copies every tensor of a bedside model.safetensors into `model` (burn's Linear stores
    [in, out]: transposed), and checks that nothing is missing or left over."""
    weights = {k: v.float() for k, v in load_file(str(path)).items()}
    state = {}
    for name, value in weights.items():
        if name.startswith("lm."):
            key, transpose = t5_name(name)
            state["t5." + key] = value.T if transpose else value
            continue
        key = name.replace("phenotype_head.hidden", "head_hidden").replace("phenotype_head.output", "head_output")
        key = key.replace("wide.words", "wide_words").replace("wide.labs", "wide_labs")
        key = key.replace("encoder.layers.", "layers.").replace(".mha.", ".").replace(".pwff.", ".")
        key = key.replace(".gamma", ".weight").replace(".beta", ".bias")
        is_linear_weight = (key.endswith(".weight") and value.dim() == 2 and "wide_words" not in key
                            and "embedding." not in key.replace("patch_embedding.", ""))
        state[key] = value.T if is_linear_weight else value
    for tied in ("t5.encoder.embed_tokens.weight", "t5.decoder.embed_tokens.weight"):
        state[tied] = state["t5.shared.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"weights do not fit the reference: missing {missing}, unexpected {unexpected}")


def timing(samples_ms):
    s = sorted(samples_ms)
    at = lambda q: s[round((len(s) - 1) * q)]
    return {"median_ms": at(0.5), "p10_ms": at(0.1), "p90_ms": at(0.9), "runs": len(s)}


def timed(warmup, repeats, f):
    for _ in range(warmup):
        f()
    samples = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        f()
        samples.append((time.perf_counter() - start) * 1e3)
    return timing(samples)


def generate(model, hidden, mask, tokens, use_cache):
    """Greedy decoding of exactly `tokens` tokens, the next token chosen on the host as bedside does."""
    out = [0]
    past = None
    for _ in range(tokens):
        ids = torch.tensor([[out[-1]]] if use_cache else [out])
        result = model.t5(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=ids,
                          past_key_values=past, use_cache=use_cache)
        past = result.past_key_values if use_cache else None
        out.append(int(result.logits[0, -1].argmax()))
    return out[1:]


def inputs_of(tensors, prefix):
    get = lambda name: tensors.get(f"{prefix}.{name}")
    return dict(ids=get("text_ids"), lengths=get("text_lengths"), values=get("values"), observed=get("observed"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True, type=pathlib.Path)
    parser.add_argument("--inputs", required=True, type=pathlib.Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--parity-tolerance", type=float, default=1e-4)
    parser.add_argument("--part", choices=("all", "inference"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    config = manifest["model"]["config"]
    tensors = load_file(str(args.inputs))
    with safe_open(str(args.inputs), "pt") as f:
        meta = f.metadata()
    n_tokens = int(meta["tokens"])
    repeats = args.repeats
    out = {"backend": "pytorch-eager-cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "python": platform.python_version(), "repeats": repeats}

    model = Clinical(config)
    load_weights(model, args.bundle / "model.safetensors")
    model.eval()
    inference = {}
    with torch.inference_mode():
        full = inputs_of(tensors, "infer")
        probabilities = torch.sigmoid(model.phenotype_logits(*model.encode(**full)))
        difference = float((probabilities - tensors["infer.probabilities"]).abs().max())
        out["parity"] = {"max_abs_difference": difference, "tolerance": args.parity_tolerance, "rows": int(probabilities.shape[0])}
        print(f"parity: phenotype probabilities within {difference:.2e} of bedside's (batch {probabilities.shape[0]})")
        if not difference <= args.parity_tolerance:
            raise SystemExit(f"the reference disagrees with bedside by {difference} (> {args.parity_tolerance}): not the same model")
        for batch in (1, 32):
            part = {k: (v[:batch] if v is not None else None) for k, v in full.items()}
            if part["ids"] is not None:
                longest = int(part["lengths"].max())
                part["ids"] = part["ids"][:, :longest]
            t = timed(2, repeats, lambda: torch.sigmoid(model.phenotype_logits(*model.encode(**part))).numpy())
            print(f"encoder + head, batch {batch}: {t['median_ms']:.2f} ms")
            inference[f"encode_head_b{batch}"] = t
        one = {k: (v[:1] if v is not None else None) for k, v in full.items()}
        one["ids"] = one["ids"][:, : int(one["lengths"][0])]
        hidden, mask, _, _ = model.encode(**one)
        for name, cache in (("generate_cache", True), ("generate_no_cache", False)):
            t = timed(1, max(3, -(-repeats // 3)), lambda: generate(model, hidden, mask, n_tokens, cache))
            rate = n_tokens / (t["median_ms"] / 1e3)
            print(f"greedy generation of {n_tokens} tokens, cache {cache}: {rate:.1f} tokens/s")
            inference[name] = {"tokens": n_tokens, "timing": t, "tokens_per_s": rate}
        out["inference"] = inference

        scaling = {"prompt_tokens": [], "generated_tokens": []}
        g = torch.Generator().manual_seed(3)
        vocab = config["t5"]["vocab_size"]
        for length in (128, 256, 512, 1024, 1600):
            ids = torch.randint(2, vocab, (1, length), generator=g)
            part = dict(ids=ids, lengths=torch.tensor([length]), values=full["values"][:1], observed=full["observed"][:1])
            t = timed(1, max(3, -(-repeats // 2)), lambda: torch.sigmoid(model.phenotype_logits(*model.encode(**part))).numpy())
            print(f"encoder + head, {length}-token prompt: {t['median_ms']:.2f} ms")
            scaling["prompt_tokens"].append({"prompt_tokens": length, "timing": t})
        for tokens in (16, 64, 256):
            t = timed(1, 3, lambda: generate(model, hidden, mask, tokens, True))
            scaling["generated_tokens"].append({"generated_tokens": tokens, "timing": t, "ms_per_token": t["median_ms"] / tokens})
            print(f"generation of {tokens} tokens with the cache: {t['median_ms'] / tokens:.2f} ms per token")
        out["scaling"] = scaling
    out["peak_rss_mib_inference"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if args.part == "all":
        out["training"] = train_steps(config, tensors, meta, repeats)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"reference: figures written to {args.out}")


def train_steps(config, tensors, meta, repeats):
    training = {}
    lr, wd, clip, pw = (float(meta[k]) for k in ("learning_rate", "weight_decay", "grad_clip", "phenotype_weight"))
    for stage in range(3):
        prefix = f"stage{stage + 1}"
        torch.manual_seed(7)
        model = Clinical(config)
        model.train()
        frozen = [[model.series, model.knowledge], [model.t5], [model.series]][stage]
        for part in frozen:
            part.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        x = inputs_of(tensors, prefix)
        targets, target_mask = tensors[f"{prefix}.targets"], tensors[f"{prefix}.target_mask"][0]
        phenotypes = tensors[f"{prefix}.phenotypes"].float()
        decoder_inputs = torch.cat([torch.zeros_like(targets[:, :1]), targets[:, :-1]], 1)

        def step():
            hidden, mask, channels, wide = model.encode(**x)
            logits = model.t5(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=decoder_inputs).logits
            picked = torch.log_softmax(logits, 2).gather(2, targets[..., None])[..., 0]
            seq = -(picked * target_mask).sum() / target_mask.sum().clamp(min=1.0)
            head = F.binary_cross_entropy_with_logits(model.phenotype_logits(hidden, mask, channels, wide), phenotypes)
            loss = seq + pw * head
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            assert math.isfinite(loss.item())

        t = timed(2, max(3, -(-repeats // 2)), step)
        batch = targets.shape[0]
        rate = batch / (t["median_ms"] / 1e3)
        print(f"distillation stage {stage + 1}: {t['median_ms']:.0f} ms per step of {batch}, {rate:.1f} examples/s")
        training[prefix] = {"batch_size": batch, "timing": t, "examples_per_s": rate}
    return training


if __name__ == "__main__":
    main()

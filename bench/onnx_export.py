"""Exports bedside's clinical model to ONNX for the onnxruntime-web peer in `make bench`.

The model is bench/reference.py's PyTorch reference (the same architecture, loaded with the bundle's
own weights and checked against bedside's probabilities there), in two graphs a web developer
would run with onnxruntime-web:

  encode.onnx        token ids, prompt length, lab values and observed flags (batch 1)
                     -> phenotype probabilities, the encoder mask, and each decoder layer's
                     cross-attention keys and values (computed once per prompt, as bedside does)
  decoder_step.onnx  one greedy step with the key/value cache: the last token, the self-attention
                     cache (length T, dynamic; T = 0 on the first step), the cross-attention keys and
                     values -> next-token logits and the cache grown by one

The step is transformers' T5 decoder written out with its own modules so that the cache is plain
tensors; before export it must generate the same tokens as transformers' own cached greedy search
(`reference.generate`) with logits within --tolerance, and onnxruntime (Python) must give the
PyTorch numbers within --tolerance on both graphs. The inputs of the first timed admission and
the expected outputs go to inputs.json for bench/ort-measure.js, which checks them again in Node
and the browser (with the weights' sha256, so that bench/gpu.sh re-exports a changed model).

Run (make bench does): python bench/onnx_export.py --bundle models/demo
      --inputs target/bench/inputs.safetensors --out target/bench/onnx
Needs torch, transformers<5, safetensors, onnx, onnxscript, onnxruntime.
"""
import argparse
import hashlib
import json
import math
import pathlib
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference import Clinical, generate, inputs_of, load_weights  # noqa: E402

NEG = torch.finfo(torch.float32).min


def heads(x, n):
    """[1, length, n * d] -> [1, n, length, d]"""
    return x.view(1, x.shape[1], n, -1).transpose(1, 2)


class Encode(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, lengths, values, observed):
        m = self.model
        hidden, mask, channels, wide = m.encode(ids=ids, lengths=lengths, values=values, observed=observed)
        probabilities = torch.sigmoid(m.phenotype_logits(hidden, mask, channels, wide))
        n = m.t5.config.num_heads
        cross = []
        for block in m.t5.decoder.block:
            attention = block.layer[1].EncDecAttention
            cross += [heads(attention.k(hidden), n), heads(attention.v(hidden), n)]
        return (probabilities, mask, *cross)


class DecoderStep(nn.Module):
    """transformers' T5Stack (decoder) for one new token, the cache as tensors."""

    def __init__(self, model):
        super().__init__()
        self.t5 = model.t5
        self.layers = len(model.t5.decoder.block)

    def forward(self, token, mask, *caches):
        t5, config = self.t5, self.t5.config
        n = config.num_heads
        past = caches[: 2 * self.layers]
        cross = caches[2 * self.layers:]
        decoder = t5.decoder
        x = decoder.embed_tokens(token)
        position = past[0].shape[2]
        first = decoder.block[0].layer[0].SelfAttention
        relative = torch.arange(position + 1)[None, :] - torch.full((1, 1), position)
        buckets = first._relative_position_bucket(relative, bidirectional=False, num_buckets=config.relative_attention_num_buckets,
                                                  max_distance=config.relative_attention_max_distance)
        self_bias = first.relative_attention_bias(buckets).permute(2, 0, 1)[None]
        cross_bias = ((1.0 - mask) * NEG)[:, None, None, :]
        grown = []
        for i, block in enumerate(decoder.block):
            attention = block.layer[0].SelfAttention
            h = block.layer[0].layer_norm(x)
            k = torch.cat([past[2 * i], heads(attention.k(h), n)], 2)
            v = torch.cat([past[2 * i + 1], heads(attention.v(h), n)], 2)
            grown += [k, v]
            weights = torch.softmax(heads(attention.q(h), n) @ k.transpose(2, 3) + self_bias, dim=-1)
            x = x + attention.o((weights @ v).transpose(1, 2).reshape(1, 1, -1))
            attention = block.layer[1].EncDecAttention
            h = block.layer[1].layer_norm(x)
            weights = torch.softmax(heads(attention.q(h), n) @ cross[2 * i].transpose(2, 3) + cross_bias, dim=-1)
            x = x + attention.o((weights @ cross[2 * i + 1]).transpose(1, 2).reshape(1, 1, -1))
            x = x + block.layer[2].DenseReluDense(block.layer[2].layer_norm(x))
        x = decoder.final_layer_norm(x)
        if config.tie_word_embeddings:
            x = x * config.d_model**-0.5
        return (t5.lm_head(x)[:, -1], *grown)


def empty_cache(model):
    c = model.t5.config
    return [torch.zeros(1, c.num_heads, 0, c.d_kv) for _ in range(2 * c.num_decoder_layers)]


def greedy(step, token, mask, cache, cross, tokens):
    out, logits = [], []
    for _ in range(tokens):
        result = step(torch.tensor([[token]]), mask, *cache, *cross)
        logits.append(result[0])
        cache = list(result[1:])
        token = int(result[0][0].argmax())
        out.append(token)
    return out, torch.cat(logits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True, type=pathlib.Path)
    parser.add_argument("--inputs", required=True, type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--tokens", type=int, default=32, help="greedy steps the parity checks compare")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    import onnxruntime

    torch.manual_seed(0)
    config = json.loads((args.bundle / "manifest.json").read_text())["model"]["config"]
    model = Clinical(config)
    load_weights(model, args.bundle / "model.safetensors")
    model.eval()
    one = {k: (v[:1] if v is not None else None) for k, v in inputs_of(load_file(str(args.inputs)), "infer").items()}
    one["ids"] = one["ids"][:, : int(one["lengths"][0])]
    inputs = (one["ids"], one["lengths"], one["values"], one["observed"])
    encode, step = Encode(model).eval(), DecoderStep(model).eval()
    start = model.t5.config.decoder_start_token_id
    layers = model.t5.config.num_decoder_layers
    with torch.inference_mode():
        probabilities, mask, *cross = encode(*inputs)
        hidden, _, _, _ = model.encode(**one)
        expected = generate(model, hidden, mask, args.tokens, True)
        tokens, logits = greedy(step, start, mask, empty_cache(model), cross, args.tokens)
    if tokens != expected:
        raise SystemExit(f"the exported decoder step generates {tokens[:8]}.., transformers {expected[:8]}..")

    args.out.mkdir(parents=True, exist_ok=True)
    names = lambda kind: [f"{kind}_{side}_{i}" for i in range(layers) for side in ("key", "value")]
    length, seq, past = torch.export.Dim("length"), torch.export.Dim("sequence"), torch.export.Dim("past")
    torch.onnx.export(encode, inputs, args.out / "encode.onnx", dynamo=True, external_data=False,
                      input_names=["ids", "lengths", "values", "observed"],
                      output_names=["probabilities", "mask", *names("cross")],
                      dynamic_shapes=({1: length}, None, None, None))
    # exported at a past of 2 so that the past length is a symbol, not the constant 0
    with torch.inference_mode():
        first = step(torch.tensor([[start]]), mask, *empty_cache(model), *cross)
        second = step(torch.tensor([[tokens[0]]]), mask, *first[1:], *cross)
    step_inputs = (torch.tensor([[tokens[1]]]), mask, *second[1:], *cross)
    torch.onnx.export(step, step_inputs, args.out / "decoder_step.onnx", dynamo=True, external_data=False,
                      input_names=["token", "mask", *names("past"), *names("cross")],
                      output_names=["logits", *names("present")],
                      dynamic_shapes=({}, {1: seq}, tuple([{2: past}] * (2 * layers) + [{2: seq}] * (2 * layers))))

    # onnxruntime (Python) against PyTorch on both graphs
    options = onnxruntime.SessionOptions()
    ort_encode = onnxruntime.InferenceSession(str(args.out / "encode.onnx"), options, providers=["CPUExecutionProvider"])
    ort_step = onnxruntime.InferenceSession(str(args.out / "decoder_step.onnx"), options, providers=["CPUExecutionProvider"])
    feeds = {"ids": inputs[0].numpy(), "lengths": inputs[1].numpy(), "values": inputs[2].numpy(), "observed": inputs[3].numpy()}
    encoded = ort_encode.run(None, feeds)
    difference = float(abs(torch.from_numpy(encoded[0]) - probabilities).max())
    if not difference <= args.tolerance:
        raise SystemExit(f"onnxruntime's probabilities differ from PyTorch's by {difference}")
    cache = [c.numpy() for c in empty_cache(model)]
    token, ort_tokens, worst = start, [], 0.0
    for i in range(args.tokens):
        out = ort_step.run(None, {"token": [[token]], "mask": encoded[1], **dict(zip(names("past"), cache)),
                                  **dict(zip(names("cross"), encoded[2:]))})
        step = abs(torch.from_numpy(out[0]) - logits[i])
        # NaN anywhere is the worst difference (Python's max(0.0, nan) would drop it)
        worst = math.inf if not bool(torch.isfinite(step).all()) else max(worst, float(step.max()))  # nan-ok: inf above
        cache, token = out[1:], int(out[0][0].argmax())
        ort_tokens.append(token)
    if ort_tokens != expected or not worst <= args.tolerance:
        raise SystemExit(f"onnxruntime's decoding differs: tokens equal {ort_tokens == expected}, logits within {worst}")
    print(f"onnx: probabilities within {difference:.1e}, {args.tokens} greedy tokens equal, logits within {worst:.1e}")

    flat = lambda t: t.flatten().tolist()
    (args.out / "inputs.json").write_text(json.dumps({
        "ids": flat(inputs[0]), "lengths": flat(inputs[1]), "values": flat(inputs[2]), "observed": flat(inputs[3]),
        "values_shape": list(inputs[2].shape), "start_token": start, "layers": layers,
        "heads": model.t5.config.num_heads, "d_kv": model.t5.config.d_kv,
        "expected": {"probabilities": flat(probabilities), "tokens": expected, "tolerance": args.tolerance},
        "model_sha256": hashlib.sha256((args.bundle / "model.safetensors").read_bytes()).hexdigest(),
    }))
    print(f"onnx: graphs and inputs written to {args.out}")


if __name__ == "__main__":
    main()

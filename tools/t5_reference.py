"""Reference fixtures for bedside's T5 (tests/t5_parity.rs), written by HuggingFace transformers.

Builds two tiny random T5 checkpoints -- `v1_1` (gated-GELU, untied embeddings, like Flan-T5) and
`original` (ReLU, tied embeddings with the d_model**-0.5 output scaling) -- and saves for each, in
`tests/fixtures/t5/<name>/`:

  config.json, model.safetensors   the checkpoint exactly as `save_pretrained` writes it
  reference.safetensors            inputs and outputs of transformers on CPU in float32:
      input_ids [2, S] (int64), attention_mask [2, S] (second row padded),
      decoder_input_ids [2, T], encoder_hidden [2, S, d_model], logits [2, T, vocab],
      greedy [2, G] (greedy generation, decoder start token first)

With transformers 5 the same two configs are written to `tests/fixtures/t5/v5/<name>/`:
transformers 5 ties every T5's output projection to its input embedding and writes
`scale_decoder_outputs` (false for `v1_1`, true for `original`) instead of deciding the scaling
by tying, and bedside must read both generations of config.json the way each computes.

Run:  python3 -m venv /tmp/pyref && /tmp/pyref/bin/pip install torch 'transformers<5' safetensors
      /tmp/pyref/bin/python tools/t5_reference.py
and again with 'transformers>=5' in another environment.
"""
import json
import pathlib

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration

import transformers

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "t5"
if int(transformers.__version__.split(".")[0]) >= 5:
    OUT = OUT / "v5"
SRC_LEN, TGT_LEN, GEN_LEN = 24, 9, 12


def build(name: str, feed_forward_proj: str, tied: bool, seed: int) -> None:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=96,
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=3,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        feed_forward_proj=feed_forward_proj,
        tie_word_embeddings=tied,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    model = T5ForConditionalGeneration(config).eval()
    # The default initialisation gives near-uniform logits; widen it so the test has teeth.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)

    directory = OUT / name
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    for extra in ("generation_config.json",):
        (directory / extra).unlink(missing_ok=True)

    gen = torch.Generator().manual_seed(seed + 1)
    input_ids = torch.randint(2, config.vocab_size, (2, SRC_LEN), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 15:] = 0
    input_ids[1, 15:] = config.pad_token_id
    decoder_input_ids = torch.randint(2, config.vocab_size, (2, TGT_LEN), generator=gen)
    decoder_input_ids[:, 0] = config.decoder_start_token_id

    with torch.no_grad():
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
        )
        # Greedy decoding by full re-computation (no cache), GEN_LEN tokens including the start.
        greedy = torch.full((2, 1), config.decoder_start_token_id)
        for _ in range(GEN_LEN - 1):
            step = model(
                input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=greedy
            ).logits[:, -1]
            greedy = torch.cat([greedy, step.argmax(-1, keepdim=True)], dim=1)
    save_file(
        {
            "input_ids": input_ids.contiguous(),
            "attention_mask": attention_mask.contiguous(),
            "decoder_input_ids": decoder_input_ids.contiguous(),
            "encoder_hidden": out.encoder_last_hidden_state.contiguous(),
            "logits": out.logits.contiguous(),
            "greedy": greedy.contiguous(),
        },
        directory / "reference.safetensors",
    )
    print(name, "logits", tuple(out.logits.shape), "greedy", greedy.tolist())


if __name__ == "__main__":
    build("v1_1", "gated-gelu", tied=False, seed=11)
    build("original", "relu", tied=True, seed=12)
    (OUT / "README.md").write_text(
        "Tiny random T5 checkpoints and transformers outputs for `tests/t5_parity.rs`.\n"
        "Written by `tools/t5_reference.py` (torch %s, transformers %s); no real weights.\n"
        % (torch.__version__, __import__("transformers").__version__)
    )

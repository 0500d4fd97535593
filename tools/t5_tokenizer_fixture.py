"""The tokenizer of the tiny T5 fixtures (tests/fixtures/t5/tokenizer.json), written the way a
HuggingFace T5 / Flan-T5 tokenizer is: a SentencePiece unigram model (pad 0, </s> 1, <unk> 2, no
<s>) converted by transformers' `T5TokenizerFast`, so that it carries T5's precompiled
normalizer, Metaspace pre-tokenizer and `$A </s>` post-processor. Its 96 ids match the fixtures'
vocab_size, so `bedside-train distill --init-from tests/fixtures/t5/v1_1` starts from a checkpoint
and tokenizer that belong together, as a real one's do.

Run:  target/pyref5/bin/pip install sentencepiece protobuf   (beside torch and transformers)
      target/pyref5/bin/python tools/t5_tokenizer_fixture.py
"""
import pathlib
import string
import tempfile

import sentencepiece as spm
from transformers import T5TokenizerFast

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "t5"
VOCAB = 96

# clinical prose of the kind the prompts hold; words only matter through their letters
CORPUS = [
    "Septic shock with lactate rising over the first day.",
    "Acute and unspecified renal failure; creatinine doubled since admission.",
    "Congestive heart failure, nonhypertensive. Bilateral crackles, oedema to the knees.",
    "Chronic obstructive pulmonary disease and bronchiectasis, on home oxygen.",
    "Diabetes mellitus with complications: glucose high, ketones present.",
    "Fluid and electrolyte disorders: sodium low, potassium high.",
    "Pneumonia, respiratory failure, insufficiency, arrest.",
    "Clinical Notes: Lab Time Series: Disease Diagnosed: Rationale:",
    "The patient was admitted to the intensive care unit after a fall at home.",
    "Heart rate, blood pressure, temperature and respiratory rate were charted every hour.",
    # the printable ASCII characters a real T5 vocabulary covers (it lacks braces, backslash and a
    # few more), so that the diagnosis template ("### Disease Diagnosed:") and every label name
    # can be written; only 96 ids fit
    string.ascii_letters + string.digits + string.punctuation.translate(str.maketrans("", "", "{}\\`|~^")),
] * 20


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = pathlib.Path(tmp) / "t5"
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(CORPUS),
            model_prefix=str(prefix),
            model_type="unigram",
            vocab_size=VOCAB,
            hard_vocab_limit=False,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            num_threads=1,
            character_coverage=1.0,
        )
        tokenizer = T5TokenizerFast(vocab_file=f"{prefix}.model", extra_ids=0)
        tokenizer.save_pretrained(tmp)
        text = pathlib.Path(tmp, "tokenizer.json").read_text()
    assert len(tokenizer) <= VOCAB, len(tokenizer)
    ids = tokenizer("Septic shock, lactate high.").input_ids
    assert ids[-1] == 1 and max(ids) < VOCAB, ids
    (OUT / "tokenizer.json").write_text(text)
    print(f"{OUT / 'tokenizer.json'}: {len(tokenizer)} tokens; 'Septic shock, lactate high.' -> {ids}")


if __name__ == "__main__":
    main()

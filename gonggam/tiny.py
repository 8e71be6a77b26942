"""Build, offline, a tiny model directory that loads exactly like the real Polyglot base (pre-trained: minutes).

    python -m gonggam.tiny --corpus data/processed/train.jsonl --output models/tiny-polyglot
    python -m gonggam.tiny ... --pretrain-dialogues 10000     # what `make tiny` runs: about 1.5 minutes on 2 cores

A byte-level BPE tokenizer trained on the corpus, with Polyglot-ko's special tokens (<|endoftext|> = 2) and
its token_type_ids; a GPT-NeoX with Polyglot's structure (parallel residual, rotary_pct 0.25) scaled down,
initialised from a fixed seed. Its config repeats the real one's eos_token_id 0, so that the code which sets
EOS to 2 is exercised by every test. With --pretrain-dialogues it is then pre-trained on that many synthetic
dialogues (gonggam/pretrain.py), so that the demo's LoRA stage starts from a base that writes sentences;
without it (the tests' default: seconds, not minutes) the weights stay random.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gonggam.errors import UserError, run_command
from gonggam.files import output_directory
from gonggam.pretrain import DEFAULT_SAMPLE, PretrainSettings

SPECIAL_TOKENS = ["<|unused0|>", "<|unused1|>", "<|endoftext|>", "<|sep|>", "<|acc|>", "<|tel|>", "<|rrn|>"]

# Polyglot-ko-5.8B's shape (used by the benchmarks) and the tiny one (tests and the demo).
POLYGLOT_5_8B_SHAPE = dict(
    hidden_size=4096, num_hidden_layers=28, num_attention_heads=16, intermediate_size=16384, vocab_size=30080
)
TINY_SHAPE = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512)
HEAD_SCALE = 10.0
LEGACY_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer*", "special_tokens_map.json")
PRETRAINING_RECORD = "pretraining.json"


def corpus_texts(corpus: Path) -> Iterator[str]:
    """Every message of a processed JSONL corpus, plus the prompt markers the chat template adds."""
    yield "### 질문: \n\n### 답변:"
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            for message in json.loads(line)["messages"]:
                yield message["content"]


def train_tokenizer(texts: Iterator[str], vocab_size: int = 2000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
        # Polyglot's tokenizer returns token_type_ids, which GPT-NeoX's generate() rejects: keep that trap.
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        model_max_length=1024,
    )


def neox_config(vocab_size: int, **shape: int):
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        vocab_size=vocab_size,
        max_position_embeddings=2048,
        rotary_pct=0.25,
        rotary_emb_base=10000,
        use_parallel_residual=True,
        hidden_act="gelu",
        tie_word_embeddings=False,
        # The real config.json says 0 here although the tokenizer's EOS is 2 (see gonggam.chat).
        bos_token_id=0,
        eos_token_id=0,
        **shape,
    )


def build_tiny(
    corpus: Path, output: Path, seed: int = 0, vocab_size: int = 2000, pretraining: PretrainSettings | None = None
) -> Path:
    """The tiny model directory; random weights unless `pretraining` says how to pre-train them."""
    import torch
    from transformers import GPTNeoXForCausalLM

    if not corpus.is_file():
        raise FileNotFoundError(f"{corpus} does not exist: run `make data` first.")
    tokenizer = train_tokenizer(corpus_texts(corpus), vocab_size)
    # A multiple of 64 like the real vocab (30080), so that shapes stay friendly to quantisation blocks.
    padded_vocab = -(-len(tokenizer) // 64) * 64
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(neox_config(padded_vocab, **TINY_SHAPE))
    # The folder is checked before the minutes of pre-training, so a refusal comes at once.
    with output_directory(output, "gonggam.tiny", legacy=LEGACY_FILES) as staging:
        if pretraining is None:
            scale_head(model)
        else:
            record = pretrain(model, tokenizer, pretraining)
            (staging / PRETRAINING_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return output


def scale_head(model: Any) -> None:
    """LoRA leaves the head frozen. At the usual init (std 0.02) a 128-wide random head can only produce logits
    within about ±3, too flat for any peaked distribution over the vocabulary, so no adapter could lower the
    loss much. A pretrained head has no such cap; scaling this one gives the random tiny model room to learn."""
    import torch

    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(HEAD_SCALE)


def pretrain(model: Any, tokenizer: Any, settings: PretrainSettings) -> dict[str, Any]:
    from data_prep.errors import DataError
    from gonggam.pretrain import pretrain as run

    try:
        return run(model, tokenizer, settings)
    except (DataError, ValueError) as error:  # a sample synth cannot use, too few dialogues for one block
        raise UserError(str(error)) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/processed/train.jsonl"))
    parser.add_argument("--output", type=Path, default=Path("models/tiny-polyglot"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument(
        "--pretrain-dialogues",
        type=int,
        default=0,
        metavar="N",
        help="pre-train on N synthetic dialogues (one pass; 0: keep the random weights, as the tests do)",
    )
    parser.add_argument("--pretrain-sample", type=Path, default=DEFAULT_SAMPLE, help="the sample synth recombines")
    parser.add_argument("--pretrain-lr", type=float, default=PretrainSettings.learning_rate)
    args = parser.parse_args(argv)
    if args.pretrain_dialogues < 0:
        parser.error("--pretrain-dialogues must be 0 or more")
    pretraining = None
    if args.pretrain_dialogues:
        pretraining = PretrainSettings(
            args.pretrain_dialogues, args.pretrain_sample, seed=args.seed, learning_rate=args.pretrain_lr
        )

    def body() -> int:
        try:
            path = build_tiny(args.corpus, args.output, args.seed, args.vocab_size, pretraining)
        except FileNotFoundError as error:
            raise UserError(str(error)) from error
        print(f"tiny Polyglot-shaped model written to {path}", file=sys.stderr)
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())

"""Fine-tune KoAlpaca-Polyglot with LoRA / QLoRA on the processed 감성 대화 corpus.

    python train_lora.py --config configs/polyglot-5.8b-qlora.yaml
    python train_lora.py --config configs/tiny-cpu.yaml --num_train_epochs 2      # any field on the command line
    accelerate launch --config_file configs/accelerate/ddp.yaml train_lora.py --config configs/polyglot-5.8b-qlora.yaml

Settings are trl's ModelConfig and SFTConfig plus gonggam's ScriptArguments, read by TrlParser
(defaults < YAML < command line); an unknown key is an error. The run writes adapters/RUN/ (see README).
"""

from __future__ import annotations

import sys

from gonggam.errors import UserError, run_command
from gonggam.training import ScriptArguments, train


def parse(argv: list[str] | None = None):
    import torch
    from trl import ModelConfig, SFTConfig, TrlParser

    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    try:
        return parser.parse_args_and_config(args=argv)
    except OSError as error:
        raise UserError(f"cannot read the config file ({error}): pass one of configs/*.yaml.") from error
    except ValueError as error:  # an unknown YAML key or a bad value; argparse reports CLI mistakes itself
        if "bf16/gpu" in str(error) and not torch.cuda.is_available():
            raise UserError(
                "this config trains in bf16 on a GPU and this machine has no CUDA GPU, so it would take days on the "
                "CPU: run it on a GPU, or use configs/tiny-cpu.yaml to try the pipeline here."
            ) from error
        raise UserError(f"{str(error).splitlines()[0]} Fix the config file or the flag.") from error


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        script_args, training_args, model_args = parse(argv)
        results = train(script_args, training_args, model_args)
        print(
            f"adapter saved to {training_args.output_dir}: eval loss {results['initial_eval_loss']} -> "
            f"{results['eval_loss']} after {results['global_step']} steps",
            file=sys.stderr,
        )
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())

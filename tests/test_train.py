"""train_lora.py for real: the tiny base in 4-bit on the CPU, trl's SFTTrainer, the files a run leaves."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from conftest import ROOT, run_cli, train

from gonggam.chat import chat_template


def results(adapter) -> dict:
    return json.loads((adapter / "train_results.json").read_text())


def test_validation_loss_falls_by_a_third(trained_adapter):
    run = results(trained_adapter)
    assert run["eval_loss"] <= run["initial_eval_loss"] * 2 / 3, run


def test_training_continues_after_evaluations_on_4bit_cpu(trained_adapter):
    """Evaluation at step 0 and every eval_steps, with training steps after each: the bitsandbytes repack trap."""
    history = results(trained_adapter)["log_history"]
    eval_steps = [row["step"] for row in history if "eval_loss" in row]
    train_steps = [row["step"] for row in history if "loss" in row]
    assert eval_steps[0] == 0 and len(eval_steps) >= 3
    assert max(train_steps) > eval_steps[1]


def test_run_directory_holds_everything(trained_adapter):
    adapter = trained_adapter
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "models/tiny-polyglot"  # relative: never a machine path
    assert set(config["target_modules"]) == {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}
    assert config["r"] == 16 and config["lora_alpha"] == 32
    generation = json.loads((adapter / "generation_config.json").read_text())
    assert generation["eos_token_id"] == 2 and generation["do_sample"] is True
    assert generation["temperature"] == 0.7 and generation["no_repeat_ngram_size"] == 6
    assert generation["max_new_tokens"] > 0
    assert (adapter / "chat_template.jinja").read_text(encoding="utf-8") == chat_template()
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    assert (adapter / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resolved = yaml.safe_load((adapter / "run_config.yaml").read_text(encoding="utf-8"))
    assert resolved["lora_r"] == 16 and resolved["packing"] is True and resolved["assistant_only_loss"] is True
    run = results(adapter)
    assert run["tokens_seen"] > 0 and run["train_runtime_s"] > 0 and run["global_step"] > 0
    card = (adapter / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["library_name"] == "peft" and header["language"] == ["ko"]
    assert header["pipeline_tag"] == "text-generation" and header["license"] and header["tags"]
    assert header["base_model"] == "models/tiny-polyglot"
    for expected in ("### 질문:", "109", "마들랜", "119", "eval_loss"):
        assert expected in card
    assert "1393" not in card


MARKER_LOSS = 123.456


def test_resume_continues_steps_and_losses(workdir, tiny_model, tmp_path):
    common = ["--max_steps", "12", "--save_steps", "6", "--logging_steps", "1", "--eval_strategy", "no"]
    full = f"adapters/resume-full-{tmp_path.name}"
    done = train(workdir, *common, "--output_dir", full)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = {r["step"]: r["loss"] for r in results(workdir / full)["log_history"] if "loss" in r}

    # The same run stopped after its step-6 checkpoint: what a crash or a pre-emption leaves behind.
    cut = workdir / f"adapters/resume-cut-{tmp_path.name}"
    shutil.copytree(workdir / full, cut, ignore=shutil.ignore_patterns("checkpoint-12"))
    for finished in ("adapter_model.safetensors", "train_results.json"):
        (cut / finished).unlink()
    # A marker only the kept checkpoint holds: a resumed run carries its history on, a restart recomputes step 6.
    state_file = cut / "checkpoint-6" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    for row in state["log_history"]:
        if row.get("step") == 6 and "loss" in row:
            row["loss"] = MARKER_LOSS
    state_file.write_text(json.dumps(state))
    done = train(workdir, *common, "--output_dir", str(cut.relative_to(workdir)), "--resume_from_checkpoint", "true")
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = results(cut)
    assert resumed["global_step"] == 12
    losses = {r["step"]: r["loss"] for r in resumed["log_history"] if "loss" in r}
    assert sorted(losses) == list(range(1, 13))
    assert losses[6] == MARKER_LOSS  # steps 1-6 came from the checkpoint, not from training again
    for step in range(7, 13):
        assert losses[step] == pytest.approx(reference[step], rel=1e-3), step
    from safetensors.torch import load_file

    a, b = load_file(workdir / full / "adapter_model.safetensors"), load_file(cut / "adapter_model.safetensors")
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


def test_wandb_logs_offline_without_a_key(workdir, tiny_model, tmp_path):
    env = {"WANDB_DIR": str(tmp_path), "WANDB_API_KEY": "", "WANDB_SILENT": "true"}
    done = run_cli(
        ROOT / "train_lora.py",
        "--config",
        ROOT / "configs" / "tiny-cpu.yaml",
        "--report_to",
        "wandb",
        "--max_steps",
        "3",
        "--eval_strategy",
        "no",
        "--output_dir",
        f"adapters/wandb-{tmp_path.name}",
        cwd=workdir,
        env=env,
        unset=("WANDB_MODE", "WANDB_API_KEY"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert runs, list(tmp_path.rglob("*"))[:20]
    assert list(runs[0].glob("run-*.wandb"))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["--train_file", "data/missing.jsonl"], "make data"),
        (["--model_name_or_path", "nobody/no-such-model"], "hf auth login"),
        (["--model_name_or_path", "{big}"], "configs/tiny-cpu.yaml"),
    ],
)
def test_user_errors_exit_2_with_one_sentence(workdir, tiny_model, tmp_path, overrides, expected):
    big = tmp_path / "polyglot-5.8b-shape"
    big.mkdir()
    from gonggam.tiny import POLYGLOT_5_8B_SHAPE, neox_config

    neox_config(**POLYGLOT_5_8B_SHAPE).save_pretrained(big)  # a config only: the check must fire before weights
    overrides = [o.replace("{big}", str(big)) for o in overrides]
    done = train(workdir, *overrides, "--output_dir", f"adapters/error-{tmp_path.name}")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last and "Traceback" not in done.stderr
    assert not (workdir / f"adapters/error-{tmp_path.name}").exists()


def test_unknown_config_key_is_named(workdir, tiny_model, tmp_path):
    config = tmp_path / "typo.yaml"
    text = (ROOT / "configs" / "tiny-cpu.yaml").read_text(encoding="utf-8")
    config.write_text(text + "\nlora_rank: 8\n", encoding="utf-8")
    done = run_cli(ROOT / "train_lora.py", "--config", config, cwd=workdir)
    assert done.returncode == 2 and "lora_rank" in done.stderr.strip().splitlines()[-1]
    done = run_cli(ROOT / "train_lora.py", "--config", config.with_name("none.yaml"), cwd=workdir)
    assert done.returncode == 2 and "none.yaml" in done.stderr.strip().splitlines()[-1]


def test_accelerate_launch_trains_in_two_processes(workdir, tiny_model, tmp_path):
    output = f"adapters/ddp-{tmp_path.name}"
    launcher = (
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "configs" / "accelerate" / "ddp.yaml"),
        "--num_processes",
        "2",
    )
    done = train(workdir, "--max_steps", "4", "--eval_strategy", "no", "--output_dir", output, launcher=launcher)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        assert f"[process {rank} of world size 2] trained 4 steps" in done.stderr
    assert results(workdir / output)["world_size"] == 2
    assert len(list((workdir / output).glob("adapter_model.safetensors"))) == 1


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_config_parses_with_no_unknown_key(config):
    """The GPU configs are read here with the CPU overrides a CPU machine needs; their values are checked."""
    from trl import ModelConfig, SFTConfig, TrlParser

    from gonggam.training import ScriptArguments

    overrides = [] if config == "tiny-cpu.yaml" else ["--bf16", "false", "--use_cpu", "true"]
    script, training, model = TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config(
        ["--config", str(ROOT / "configs" / config), *overrides]
    )
    assert set(model.lora_target_modules) == {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}
    assert training.packing and training.assistant_only_loss and training.save_total_limit == 2
    assert model.attn_implementation == "sdpa_varlen"  # the one tests/test_packing.py proves contamination-free
    if config.startswith("polyglot"):
        assert script.base_model_id == "beomi/KoAlpaca-Polyglot-5.8B" and training.max_length == 1024
        assert model.lora_r == 16 and model.lora_alpha == 32 and model.lora_dropout == 0.05
        assert training.learning_rate == 2e-4 and training.activation_checkpointing
        assert model.load_in_4bit != model.load_in_8bit


def test_gpu_config_on_a_cpu_machine_points_at_the_tiny_config(workdir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the 5.8B config is allowed to start")
    done = run_cli(ROOT / "train_lora.py", "--config", ROOT / "configs" / "polyglot-5.8b-qlora.yaml", cwd=workdir)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "configs/tiny-cpu.yaml" in done.stderr.strip().splitlines()[-1]

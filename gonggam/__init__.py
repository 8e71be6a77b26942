"""gonggam: LoRA/QLoRA fine-tuning of KoAlpaca-Polyglot-5.8B on the AIHub 감성 대화 말뭉치."""

import logging

# bitsandbytes' CPU backend tries to fetch an optional kernel from the Hugging Face Hub at import and, offline,
# tells every user to `pip install kernels`; its built-in CPU kernels work without it, so the advice is noise.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

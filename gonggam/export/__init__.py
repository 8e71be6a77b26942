"""GGUF export of a merged model for llama.cpp and Ollama (export_gguf.py).

- `convert`: the merged GPT-NeoX folder -> an f32 or f16 GGUF file (weights, tokenizer, chat template, EOS, sampling
  defaults), written by the project itself with the `gguf` package;
- `quantize`: q8_0 / q4_k_m from that file, by llama.cpp's own quantiser (llama-cpp-python's C API);
- `verify`: llama.cpp's tokenisation of the file against the Hugging Face tokenizer's, before anything is kept;
- `ollama`: the Modelfile written beside each file.
"""

"""The Ollama Modelfile written beside each GGUF file.

Ollama does not run the file's Jinja chat template: it renders Go's text/template. GO_TEMPLATE re-expresses
gonggam/chat_template.jinja exactly (tests/test_gguf.py renders both and compares): turns joined by a blank line,
"### 질문: {user}", "### 답변: {assistant}<|endoftext|>", a system message as bare text, and the prompt ending
at "### 답변:" so that the reply's leading space is the first generated token, as in training. The blank lines are
real newlines, not "\\n" escapes, because Modelfile strings are not Go strings.
"""

from __future__ import annotations

from typing import Any

from gonggam.chat import EOS_TOKEN, TURN_MARKER

GO_TEMPLATE = "".join(
    [
        "{{- range $i, $m := .Messages }}{{ if $i }}\n\n{{ end }}",
        '{{- if eq $m.Role "user" }}### 질문: {{ $m.Content }}',
        '{{- else if eq $m.Role "assistant" }}### 답변: {{ $m.Content }}',
        EOS_TOKEN,
        '{{- else if eq $m.Role "system" }}{{ $m.Content }}',
        "{{- end }}{{ end }}\n\n### 답변:",
    ]
)


def modelfile(gguf_name: str, defaults: dict[str, Any]) -> str:
    """A Modelfile for `ollama create NAME -f THIS_FILE`, run from the folder that holds both files."""
    stem = gguf_name.removesuffix(".gguf")
    return f'''# gonggam (공감), made by export_gguf.py: ollama create gonggam -f {stem}.Modelfile
# The safety layer (crisis replies with 109) runs only when answering through gonggam (infer.py), not in Ollama.
FROM ./{gguf_name}
TEMPLATE """{GO_TEMPLATE}"""
PARAMETER stop "{EOS_TOKEN}"
PARAMETER stop "{TURN_MARKER}"
PARAMETER temperature {defaults["temperature"]}
PARAMETER top_p {defaults["top_p"]}
PARAMETER top_k {defaults["top_k"]}
PARAMETER num_predict {defaults["max_new_tokens"]}
# gonggam uses no repetition penalty (Ollama's default is 1.1); its no_repeat_ngram_size
# {defaults.get("no_repeat_ngram_size", 0)} has no Ollama counterpart.
PARAMETER repeat_penalty {defaults["repetition_penalty"]}
'''

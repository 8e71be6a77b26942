"""The gateway (serve.py) under load, on loopback only: a null engine, the tiny model in process, and llama.cpp's
server upstream.

    .venv/bin/python bench/serve.py                       # merged/tiny-cpu (make demo) and its q8_0 GGUF
    .venv/bin/python bench/serve.py --model merged/RUN --requests 200 --concurrency 16

For each engine: --concurrency clients stream --requests replies in all through the gateway (a subprocess on
127.0.0.1), then the same requests go to the engine directly: the Responder in this process (the safety layer
included, so the difference is the gateway alone: HTTP, validation, the worker thread, the history count, SSE), and
for the upstream engine also llama.cpp's /v1/completions with the rendered prompt (no safety layer). Errors,
requests/s, p50/p95 latency and time to first token are recorded. The gateway's own overhead is measured one
request at a time, in pairs (the same greedy request through the gateway and directly, in alternating order), as
the median of the differences; the null engine (instant replies, no model) shows it with nothing else in the way.
Bar: <= 5 ms added at p50. Nothing is asserted; bench/results/serve.json and serve.png are written.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.common import ROOT, record, write_json

# Written for this bench: ordinary first messages (none of them is a crisis, so every request reaches the engine).
PROMPTS = [
    "친구랑 싸워서 마음이 복잡해",
    "요즘 잠을 잘 못 자서 피곤해요",
    "회사에서 실수를 해서 계속 신경 쓰여",
    "이사 온 동네에 아는 사람이 없어서 외로워",
    "시험이 다음 주인데 공부가 손에 안 잡혀",
    "부모님이랑 진로 문제로 자꾸 부딪혀요",
    "오랜만에 운동을 했더니 기분이 좀 나아졌어",
    "동생이 내 말을 안 들어서 속상해",
]
BAR_MS = 5.0
RESULTS = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "merged" / "tiny-cpu", help="a merged model folder")
    parser.add_argument("--gguf", type=Path, help="its GGUF (default: exported from --model with export_gguf.py)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=60, help="gateway/direct pairs, one at a time")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS / "serve.json")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- processes on 127.0.0.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A server subprocess; `ready` polls `probe` until it answers."""

    def __init__(self, command: list[str], probe: Callable[[], bool], timeout: float = 240):
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not probe():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("".join(self.lines)[-3000:] or "the server did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=60)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).is_success
    except httpx.HTTPError:
        return False


def start_gateway(*engine: str) -> tuple[Process, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(ROOT / "serve.py"), *engine, "--port", str(port)]
    return Process(command, lambda: answers(f"{url}/healthz")), url


def start_llama_server(gguf: Path) -> tuple[Process, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    # llama-cpp-python's server interrupts the running stream when another request arrives, unless told not to:
    # concurrent clients would cut each other off.
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--n_ctx", "1024"]
    command += ["--interrupt_requests", "False"]
    return Process([*command, "--host", "127.0.0.1", "--port", str(port)], lambda: answers(f"{url}/models")), url


# ---------------------------------------------------------------- one request, three ways


Timing = tuple[float, float]  # (seconds to the first text, seconds to the end)


def via_gateway(url: str, max_tokens: int) -> Callable[[httpx.Client, str], Timing]:
    def one(client: httpx.Client, prompt: str) -> Timing:
        body = {"messages": [{"role": "user", "content": prompt}], "stream": True, "temperature": 0}
        start, first = time.perf_counter(), None
        with client.stream("POST", f"{url}/v1/chat/completions", json={**body, "max_tokens": max_tokens}) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if (
                    first is None
                    and line.startswith("data: {")
                    and '"content":"' in line
                    and '"content":""' not in line
                ):
                    first = time.perf_counter()
                if line == "data: [DONE]":
                    break
            else:
                raise RuntimeError("the stream ended before [DONE]")
        end = time.perf_counter()
        return (first or end) - start, end - start

    return one


def via_responder(responder: Any, max_tokens: int, lock: Any = None) -> Callable[[Any, str], Timing]:
    """The Responder called in this process, as the gateway's worker calls it (behind its FairLock for in-process)."""
    never = threading.Event()

    def one(_: Any, prompt: str) -> Timing:
        start, first = time.perf_counter(), []

        def write(piece: str) -> None:
            if piece and not first:
                first.append(time.perf_counter())

        messages = [{"role": "user", "content": prompt}]
        if lock is None:
            responder.stream(messages, write, do_sample=False, max_new_tokens=max_tokens)
        else:
            lock.acquire(never)
            try:
                responder.stream(messages, write, do_sample=False, max_new_tokens=max_tokens)
            finally:
                lock.release()
        end = time.perf_counter()
        return (first[0] if first else end) - start, end - start

    return one


def via_llama_server(url: str, max_tokens: int) -> Callable[[httpx.Client, str], Timing]:
    """llama.cpp's own /v1/completions with the rendered prompt: the engine alone, no safety layer."""
    from gonggam.chat import render_prompt

    def one(client: httpx.Client, prompt: str) -> Timing:
        body = {
            "prompt": render_prompt([{"role": "user", "content": prompt}]),
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_k": 1,
            "stop": ["<|endoftext|>", "###"],
            "stream": True,
        }
        start, first = time.perf_counter(), None
        with client.stream("POST", f"{url}/completions", json=body) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if first is None and line.startswith("data: {") and '"text":""' not in line:
                    first = time.perf_counter()
        end = time.perf_counter()
        return (first or end) - start, end - start

    return one


# ---------------------------------------------------------------- load


def load(one: Callable[[Any, str], Timing], requests: int, concurrency: int) -> dict[str, Any]:
    """`requests` calls of `one` from `concurrency` threads; figures in milliseconds."""
    timings: list[Timing] = []
    errors: list[str] = []
    lock = threading.Lock()
    queue = iter(range(requests))

    def client_loop() -> None:
        with httpx.Client(timeout=300) as client:
            while True:
                with lock:
                    number = next(queue, None)
                if number is None:
                    return
                try:
                    timing = one(client, PROMPTS[number % len(PROMPTS)])
                except Exception as error:  # counted, never hidden: the bar is zero errors
                    with lock:
                        errors.append(type(error).__name__)
                    continue
                with lock:
                    timings.append(timing)

    for prompt in PROMPTS[:2]:  # warm-up: first-call costs (analyser caches, allocations) are not the figures
        with httpx.Client(timeout=300) as client:
            one(client, prompt)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client_loop) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - start
    return summary(timings, errors, wall, requests, concurrency)


def summary(timings: list[Timing], errors: list[str], wall: float, requests: int, concurrency: int):
    latencies = sorted(t[1] * 1000 for t in timings)
    firsts = sorted(t[0] * 1000 for t in timings)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": len(errors),
        "error_types": sorted(set(errors)),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(timings) / wall, 2),
        "latency_ms": {"p50": _pct(latencies, 50), "p95": _pct(latencies, 95), "mean": _mean(latencies)},
        "first_token_ms": {"p50": _pct(firsts, 50), "p95": _pct(firsts, 95)},
    }


def _pct(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return round(values[0], 2) if values else float("nan")
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 2)


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 2) if values else float("nan")


# ---------------------------------------------------------------- overhead: the same request both ways, in turn


def paired(gateway: Callable[[Any, str], Timing], direct: Callable[[Any, str], Timing], pairs: int) -> dict[str, Any]:
    """One request through the gateway, then the same one directly (the order alternating), `pairs` times: load on
    the machine hits both alike, and the median of the differences is what the gateway adds."""
    through, straight = [], []
    with httpx.Client(timeout=300) as client:
        for prompt in PROMPTS[:2]:
            gateway(client, prompt), direct(client, prompt)
        for number in range(pairs):
            prompt = PROMPTS[number % len(PROMPTS)]
            if number % 2:
                straight.append(direct(client, prompt))
                through.append(gateway(client, prompt))
            else:
                through.append(gateway(client, prompt))
                straight.append(direct(client, prompt))
    added = [(g[1] - d[1]) * 1000 for g, d in zip(through, straight, strict=True)]
    added_first = [(g[0] - d[0]) * 1000 for g, d in zip(through, straight, strict=True)]
    return {
        "pairs": pairs,
        "gateway": summary(through, [], 1.0, pairs, 1),
        "direct": summary(straight, [], 1.0, pairs, 1),
        "added_p50_ms": round(statistics.median(added), 2),
        "added_first_token_p50_ms": round(statistics.median(added_first), 2),
    }


# ---------------------------------------------------------------- the engines


class NullEngine:
    """An engine that answers at once (three pieces, no model): what is left to time is the gateway itself."""

    name = "null"
    thread_safe = True

    def __init__(self) -> None:
        from gonggam.chat import GENERATION_DEFAULTS

        self.generation_config = dict(GENERATION_DEFAULTS)

    def generate(self, prompts: list[str], sampling: Any) -> list[Any]:
        from gonggam.backends import Generated

        return [Generated("그러셨군요. 많이 속상하셨겠어요.", "eos", 8) for _ in prompts]

    def stream(self, prompt: str, sampling: Any):
        yield from ("그러셨군요.", " 많이", " 속상하셨겠어요.")

    def count_tokens(self, text: str) -> int:
        return len(text.encode("utf-8"))

    def unsupported(self, sampling: Any) -> list[str]:
        return []


def null_server(port: int) -> int:
    """`bench/serve.py --null-server PORT`: the gateway over NullEngine, as serve.py runs it."""
    import uvicorn

    from gonggam.generation import Responder, load_safety_layer
    from gonggam.serve.app import create_app

    load_safety_layer()
    app = create_app(Responder(NullEngine()))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    return 0


def null_engine(args: argparse.Namespace) -> dict[str, Any]:
    from gonggam.generation import Responder, load_safety_layer

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(Path(__file__).resolve()), "--null-server", str(port)]
    server = Process(command, lambda: answers(f"{url}/healthz"))
    load_safety_layer()
    try:
        direct = via_responder(Responder(NullEngine()), args.max_tokens, None)
        return compare(via_gateway(url, args.max_tokens), direct, args)
    finally:
        server.stop()


def in_process(args: argparse.Namespace) -> dict[str, Any]:
    from gonggam.generation import Responder
    from gonggam.serve.engine import FairLock

    gateway, url = start_gateway("--model", str(args.model), "--dtype", "float32")
    try:
        responder = Responder.load(str(args.model), dtype="float32")
        direct = via_responder(responder, args.max_tokens, FairLock())  # the gateway's own queue, first come first
        return compare(via_gateway(url, args.max_tokens), direct, args)
    finally:
        gateway.stop()


def upstream(args: argparse.Namespace, gguf: Path) -> dict[str, Any]:
    from gonggam.backends.upstream import UpstreamBackend
    from gonggam.generation import Responder, load_safety_layer

    engine, engine_url = start_llama_server(gguf)
    try:
        gateway, url = start_gateway("--upstream", engine_url, "--upstream-tokenizer", str(gguf))
        try:
            load_safety_layer()
            direct = via_responder(Responder(UpstreamBackend.connect(engine_url)), args.max_tokens, None)
            raw = via_llama_server(engine_url, args.max_tokens)
            return compare(via_gateway(url, args.max_tokens), direct, args, engine_only=raw)
        finally:
            gateway.stop()
    finally:
        engine.stop()


def compare(gateway: Callable, direct: Callable, args: argparse.Namespace, engine_only: Callable | None = None):
    """The load test on each path (one path at a time), then the paired overhead."""
    figures = {"gateway": load(gateway, args.requests, args.concurrency)}
    figures["direct"] = load(direct, args.requests, args.concurrency)
    if engine_only is not None:
        figures["engine_only"] = load(engine_only, args.requests, args.concurrency)
    figures["paired"] = paired(gateway, direct, args.sequential)
    return figures


def export_gguf(model: Path) -> Path:
    out = Path(tempfile.gettempdir()) / "gonggam-bench-serve" / model.name  # export_gguf.py names files after it
    gguf = out / f"{model.name}-q8_0.gguf"
    if not gguf.is_file():
        command = [sys.executable, str(ROOT / "export_gguf.py"), "--model", str(model), "--output", str(out)]
        subprocess.run([*command, "--quant", "q8_0"], cwd=ROOT, check=True)
    return gguf


# ---------------------------------------------------------------- report


def table(results: dict[str, Any]) -> list[str]:
    rows = ["| engine | path | clients | errors | req/s | p50 ms | p95 ms | first token p50 ms | p95 ms |"]
    rows.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for engine, figures in results["engines"].items():
        for path in ("engine_only", "direct", "gateway"):
            if path in figures:
                f = figures[path]
                rows.append(
                    f"| {engine} | {path} | {f['concurrency']} | {f['errors']} | {f['requests_per_s']:.2f} | "
                    f"{f['latency_ms']['p50']:.1f} | {f['latency_ms']['p95']:.1f} | "
                    f"{f['first_token_ms']['p50']:.1f} | {f['first_token_ms']['p95']:.1f} |"
                )
    return rows


def overhead_table(results: dict[str, Any]) -> list[str]:
    rows = ["| engine | direct p50 ms | gateway p50 ms | added p50 ms (paired) | added to first token | bar |"]
    rows.append("|---|---:|---:|---:|---:|---|")
    for engine, figures in results["engines"].items():
        p = figures["paired"]
        verdict = "met" if p["added_p50_ms"] <= BAR_MS else "missed"
        rows.append(
            f"| {engine} | {p['direct']['latency_ms']['p50']:.1f} | {p['gateway']['latency_ms']['p50']:.1f} | "
            f"{p['added_p50_ms']:.2f} | {p['added_first_token_p50_ms']:.2f} | {verdict} |"
        )
    return rows


def chart(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, rates, added = [], [], []
    for engine, figures in results["engines"].items():
        for name in ("engine_only", "direct", "gateway"):
            if name in figures:
                labels.append(f"{engine}: {name}")
                rates.append(figures[name]["requests_per_s"])
    engines = list(results["engines"])
    added = [results["engines"][e]["paired"]["added_p50_ms"] for e in engines]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.45 * len(labels) + 2), width_ratios=[3, 2])
    bars = left.barh(labels[::-1], rates[::-1], color="tab:blue")
    left.bar_label(bars, fmt="%.1f", padding=3)
    left.set_title(f"requests/s, {results['concurrency']} clients, {results['requests']} requests", fontsize=10)
    left.margins(x=0.2)
    bars = right.barh(engines[::-1], added[::-1], color="tab:orange")
    right.bar_label(bars, fmt="%.2f ms", padding=3)
    right.axvline(BAR_MS, color="tab:red", linestyle="--", linewidth=1, label=f"bar {BAR_MS:g} ms")
    right.set_title("added by the gateway, p50 ms (paired)", fontsize=10)
    right.legend(fontsize=8)
    right.margins(x=0.3)
    fig.suptitle("serve.py on loopback (tiny model, CPU)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--null-server":
        return null_server(int(sys.argv[2]))
    args = parse_args(argv)
    load_before = os.getloadavg()  # other work on the machine shows in every figure: recorded with them
    if not (args.model / "config.json").is_file():
        print(f"error: {args.model} is not a merged model: run `make demo` (or pass --model).", file=sys.stderr)
        return 2
    gguf = args.gguf or export_gguf(args.model)
    engines = {
        "null engine (the gateway alone)": null_engine(args),
        "transformers in process": in_process(args),
        "upstream: llama.cpp server, q8_0": upstream(args, gguf),
    }
    results = record(
        "serve",
        sys.argv if argv is None else ["bench/serve.py", *argv],
        model=str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
        gguf=gguf.name,
        requests=args.requests,
        concurrency=args.concurrency,
        pairs=args.sequential,
        max_tokens=args.max_tokens,
        sampling="greedy (temperature 0), the same prompts on every path",
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        bar_ms=BAR_MS,
        engines=engines,
    )
    write_json(args.output, results)
    chart(args.output.with_suffix(".png"), results)
    print("\n".join(table(results)))
    print()
    print("\n".join(overhead_table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""serve.py as users run it: a real server process on a free 127.0.0.1 port, driven by the official `openai`
client and by a real browser (headless Chromium through Selenium), over the tiny merged model and over llama.cpp's
own server on the tiny GGUF. One server process per engine for the whole module. All Korean text here was written
for these tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT

from gonggam import safety
from gonggam.chat import render_prompt
from gonggam.serve.cli import tokenizer_counter

openai = pytest.importorskip("openai", reason="the openai client is a test requirement: `make test` installs it")

CALM = "친구랑 싸워서 마음이 복잡해"
FOLLOW_UP = "고마워요. 조금 나아졌어요"
CRISIS = "오늘 밤에 모아둔 수면제를 전부 삼킬 거야"
GREEDY = {"temperature": 0, "max_tokens": 48}


class ServeProcess:
    """`python serve.py ARGS --port 0`; the port is read from its log line, its output is kept for the privacy test."""

    def __init__(self, *args: str | Path, timeout: float = 240):
        command = [sys.executable, str(ROOT / "serve.py"), *map(str, args), "--port", "0"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url(timeout)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r" on (http://127\.0\.0\.1:\d+)/", self.log())
            if found and _healthy(found.group(1)):
                return found.group(1)
            assert self.process.poll() is None, self.log()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"serve.py did not start in {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends: uvicorn shuts down gracefully
        return self.process.wait(timeout=60)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).json().get("model_loaded") is True
    except (httpx.HTTPError, ValueError):
        return False


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused-without-api-key-env", max_retries=0, timeout=120)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def tiny_server(merged):
    server = ServeProcess("--model", merged)
    yield server
    server.stop()


def check_the_openai_client(url: str, model: str, backend: str) -> None:
    """Models, a whole reply, the same reply streamed, a second turn, the crisis reply, and a refused request."""
    api = client(url)
    assert [m.id for m in api.models.list().data] == [model]
    whole = api.chat.completions.create(model=model, messages=user(CALM), **GREEDY)
    text = whole.choices[0].message.content
    extra = whole.model_extra["gonggam"]
    assert text and whole.choices[0].finish_reason in ("stop", "length", "content_filter")
    assert extra["engine"]["backend"] == backend and extra["safety"]["level"] == "none"
    assert whole.usage.prompt_tokens > 0
    chunks = list(api.chat.completions.create(model=model, messages=user(CALM), stream=True, **GREEDY))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # greedy: the streamed reply is the whole reply, piece by piece
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    second = [*user(CALM), {"role": "assistant", "content": text}, *user(FOLLOW_UP)]
    assert api.chat.completions.create(model=model, messages=second, **GREEDY).choices[0].message.content
    # A reply cut by max_tokens ends the stream too (a transformers stream that ran to its budget once never did).
    cut = api.with_options(timeout=60).chat.completions.create(
        model=model, messages=user(CALM), temperature=0, max_tokens=3, stream=True
    )
    assert list(cut)[-1].choices[0].finish_reason in ("length", "stop", "content_filter")
    crisis = api.chat.completions.create(model=model, messages=user(CRISIS))
    assert crisis.choices[0].message.content == safety.CRISIS_REPLY
    assert crisis.choices[0].finish_reason == "content_filter"
    with pytest.raises(openai.BadRequestError) as refused:
        api.chat.completions.create(model=model, messages=[{"role": "assistant", "content": "안녕하세요"}])
    assert refused.value.status_code == 400


def test_the_openai_client_against_serve_py_on_the_tiny_model(tiny_server):
    check_the_openai_client(tiny_server.url, "tiny-cpu", "transformers")


# ---------------------------------------------------------------- the web chat in a real browser


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    how = "install it with `apt-get install -y chromium chromium-driver` (as root; .ci/run does this)"
    if os.environ.get("GONGGAM_REQUIRE_BROWSER"):
        pytest.fail(f"headless Chromium is required here and missing: {how}")
    pytest.skip(f"headless Chromium is not installed: {how}")


def open_browser(base: str):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test requirement: `make test`")
    browser, driver = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=390,844",  # a phone's screen
        # Nothing but the test server can be reached: every other host name fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)


def requested_urls(driver) -> list[str]:
    """Every URL the page asked the network for, from Chrome's DevTools performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_web_chat_streams_a_reply_and_shows_the_crisis_card(tiny_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = open_browser(tiny_server.url)
    wait = WebDriverWait(driver, 60)
    try:
        driver.get(f"{tiny_server.url}/")
        helpline = driver.find_element(By.ID, "helpline")
        assert helpline.is_displayed() and all(n in helpline.text for n in ("109", "1577-0199", "119", "112"))
        message = driver.find_element(By.ID, "message")

        # The tiny model writes nonsense; now and then the output check replaces it. Ask again until a plain
        # reply streams (three tries: the chance of three replacements in a row is about 1 in 500).
        for attempt in range(1, 4):
            message.send_keys(CALM, Keys.ENTER)
            reply = wait.until(lambda d, n=attempt: _finished(d, n))
            if "crisis" not in reply.get_attribute("class"):
                break
        assert reply.get_attribute("data-state") == "done" and int(reply.get_attribute("data-chunks")) >= 1
        assert reply.find_element(By.CLASS_NAME, "text").text.strip()

        message.send_keys(CRISIS, Keys.ENTER)
        card = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.crisis .crisis-card")[-1:])[0]
        assert "109" in card.text and card.find_element(By.CSS_SELECTOR, "a.call").get_attribute("href") == "tel:109"
        # Nothing is wider than the phone's screen.
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert helpline.is_displayed()  # still in view after the conversation grew
        screenshot = tmp_path / "web-chat.png"
        assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000

        driver.find_element(By.ID, "new-chat").click()
        assert driver.find_elements(By.CSS_SELECTOR, ".msg") == []
        foreign = [u for u in requested_urls(driver) if not u.startswith((tiny_server.url, "data:"))]
        assert foreign == []  # the page, its CSS and JavaScript and the API: nothing from anywhere else
    finally:
        driver.quit()


def test_the_web_chat_asks_for_the_api_key_and_its_stop_button_ends_the_stream(monkeypatch, tmp_path):
    """serve.py --api-key-env in front of a slow OpenAI-compatible engine: a stand-in (tests/openai_stub.py), since no
    GPU engine can run here. The page asks for the key after a 401; the stop button ends a reply mid-stream."""
    from openai_stub import OpenAIStub
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    engine = OpenAIStub(reply=" ".join(["그러셨군요.", "많이", "속상하셨겠어요."] * 20), word_delay=0.25)
    monkeypatch.setenv("GONGGAM_TEST_KEY", "test-key-7f3a")
    server = ServeProcess(
        "--upstream", engine.url, "--upstream-model", "gonggam-stub", "--api-key-env", "GONGGAM_TEST_KEY"
    )
    driver = open_browser(server.url)
    wait = WebDriverWait(driver, 60)
    try:
        driver.get(f"{server.url}/")
        message = driver.find_element(By.ID, "message")
        message.send_keys(CALM, Keys.ENTER)
        key_box = wait.until(
            lambda d: d.find_element(By.ID, "key-box") if d.find_element(By.ID, "key-box").is_displayed() else False
        )
        assert "API 키" in driver.find_element(By.ID, "status").text and engine.completions() == []
        key_box.find_element(By.ID, "api-key").send_keys("test-key-7f3a")
        driver.find_element(By.ID, "save-key").click()
        assert not key_box.is_displayed()

        message.send_keys(CALM, Keys.ENTER)
        stop = driver.find_element(By.ID, "stop")
        streaming = '.msg.assistant[data-state="streaming"]'
        bubble = wait.until(
            lambda d: next(
                (b for b in d.find_elements(By.CSS_SELECTOR, streaming) if int(b.get_attribute("data-chunks")) >= 1),
                False,
            )
        )
        assert stop.is_displayed()
        stop.click()
        wait.until(lambda d: bubble.get_attribute("data-state") == "stopped")
        shown = bubble.find_element(By.CLASS_NAME, "text").text
        time.sleep(1.5)  # the engine would have sent several more words by now
        assert bubble.find_element(By.CLASS_NAME, "text").text == shown and 0 < len(shown) < len(engine.reply) // 2
        assert "멈췄어요" in bubble.text and not stop.is_displayed()
        assert len(engine.completions()) == 1  # the request with the key went through; the one without never did
        driver.save_screenshot(str(tmp_path / "stopped.png"))
    finally:
        driver.quit()
        server.stop()
        engine.close()


def _finished(driver, replies: int):
    from selenium.webdriver.common.by import By

    done = driver.find_elements(By.CSS_SELECTOR, '.msg.assistant[data-state="done"], .msg.crisis')
    return done[-1] if len(done) >= replies else False


def test_the_servers_log_holds_no_conversation_and_ctrl_c_ends_it(tiny_server):
    """Runs after the client and browser tests above (file order) on the same server process."""
    requests = [line for line in tiny_server.lines if "request=" in line]
    assert len(requests) >= 8 and any("safety=crisis" in line for line in requests)
    log = tiny_server.log()
    for text in (CALM, FOLLOW_UP, CRISIS, "수면제", safety.CRISIS_REPLY[:20], "안녕하세요"):
        assert text not in log
    # Ctrl-C ends it the way it ends every command here: one line, exit 130 (gonggam.errors.run_command).
    assert tiny_server.stop() == 130 and "Traceback" not in tiny_server.log()
    assert tiny_server.lines[-1].startswith("interrupted: the server stopped; no conversation was kept.")


# ---------------------------------------------------------------- the gateway in front of llama.cpp's own server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_gateway(gguf_exports):
    """llama.cpp's OpenAI-compatible server on the tiny q8_0 GGUF, and serve.py --upstream in front of it."""
    port, gguf = free_port(), gguf_exports["q8_0"]
    # --interrupt_requests False: by default llama-cpp-python's server cuts a running stream when a request arrives.
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--n_ctx", "1024"]
    command += ["--interrupt_requests", "False"]
    engine = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        gateway = ServeProcess("--upstream", f"http://127.0.0.1:{port}/v1", "--upstream-tokenizer", gguf)
        yield gateway, str(gguf)
        assert gateway.stop() == 130
    finally:
        engine.terminate()
        engine.wait(timeout=30)


def test_the_openai_client_through_the_gateway_to_llama_cpps_server(llama_gateway):
    gateway, served_name = llama_gateway
    check_the_openai_client(gateway.url, served_name, "upstream")


def test_a_history_longer_than_llama_cpps_context_is_cut_to_fit(llama_gateway):
    """llama.cpp's server refuses a prompt over its 1,024-token context; the gateway sends what fits."""
    gateway, served_name = llama_gateway
    story = "요즘 회사 일이 많아서 주말에도 쉬지 못하고 계속 일만 하고 있어요. " * 6
    answer = {"role": "assistant", "content": "많이 지치셨겠어요. 조금이라도 쉬실 수 있으면 좋겠어요."}
    messages = []
    for _ in range(12):
        messages += [*user(story), answer]
    messages.append(user(CALM)[0])
    assert tokenizer_counter(served_name)(render_prompt(messages)) > 1024  # too long for the engine as it stands
    reply = client(gateway.url).chat.completions.create(model=served_name, messages=messages, **GREEDY)
    assert reply.choices[0].message.content and reply.usage.prompt_tokens <= 1024 - GREEDY["max_tokens"]

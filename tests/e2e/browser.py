"""Headless Chromium driven over the DevTools protocol: just enough for the end-to-end tests.

Chromium (Debian package ``chromium``) is started with a fresh profile and a DevTools port; one
page is driven over its WebSocket with aiohttp (no WebDriver needed). Home Assistant's frontend
draws everything inside shadow roots, so :data:`PAGE_TEXT` collects the text through them.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
BINARIES = ("chromium", "chromium-browser", "google-chrome")

# The text of the page, shadow roots included, whitespace collapsed.
PAGE_TEXT = """(() => {
  const skip = new Set(["STYLE", "SCRIPT", "TEMPLATE", "NOSCRIPT"]);
  const parts = [];
  const walk = (node) => {
    if (skip.has(node.nodeName)) return;
    if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  if (document.documentElement) walk(document.documentElement);
  return parts.join(" ").replace(/\\s+/g, " ");
})()"""


# Focus the first <input name=...> of the page, shadow roots included; whether there is one.
FOCUS_INPUT = """((name) => {
  const find = (node) => {
    if (node.nodeName === "INPUT" && node.name === name) return node;
    for (const child of [...(node.shadowRoot ? [node.shadowRoot] : []), ...node.children]) {
      const found = find(child);
      if (found) return found;
    }
    return null;
  };
  const input = document.documentElement && find(document.documentElement);
  if (input) input.focus();
  return Boolean(input);
})"""


def find_chromium() -> str | None:
    """The Chromium executable on ``PATH``, if any."""
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


class BrowserError(Exception):
    """Chromium did not start or a DevTools command failed."""


class Chromium:
    """One headless Chromium process with one page."""

    def __init__(self, binary: str, profile: Path, size: tuple[int, int] = (1280, 1400)) -> None:
        """Use ``binary`` with the (fresh) profile directory ``profile``; ``size`` in pixels."""
        self.binary = binary
        self.profile = profile
        self.size = size
        self.process: subprocess.Popen[bytes] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    def start(self, timeout: float = 30.0) -> int:
        """Start Chromium; its DevTools port."""
        self.profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own arguments
            [
                self.binary,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.profile / "chromium.log").open("wb"),
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                msg = f"Chromium did not start: {log}"
                raise BrowserError(msg)
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])
        return self.port

    def stop(self) -> None:
        """End the Chromium process."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def connect(self, session: aiohttp.ClientSession) -> None:
        """Attach to the page."""
        async with session.get(f"http://127.0.0.1:{self.port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(target for target in targets if target["type"] == "page")
        self._ws = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)

    async def close(self) -> None:
        """Detach from the page."""
        if self._ws is not None:
            await self._ws.close()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run a DevTools command; its result (events in between are ignored)."""
        assert self._ws is not None
        command_id = next(self._ids)
        await self._ws.send_json({"id": command_id, "method": method, "params": params})
        while True:
            message = json.loads(await self._ws.receive_str())
            if message.get("id") == command_id:
                if "error" in message:
                    msg = f"{method}: {message['error']}"
                    raise BrowserError(msg)
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            msg = f"{expression[:60]}: {result['exceptionDetails']}"
            raise BrowserError(msg)
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Open ``url`` (returns when the navigation started; wait for content separately)."""
        await self.send("Page.navigate", url=url)

    async def type_into(self, name: str, text: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Type ``text`` into the input field named ``name`` (waits until there is one)."""
        deadline = time.monotonic() + timeout
        while not await self.evaluate(f"{FOCUS_INPUT}({json.dumps(name)})"):
            if time.monotonic() > deadline:
                msg = f"no input field {name!r}; the page shows: {(await self.text())[:500]}"
                raise BrowserError(msg)
            await asyncio.sleep(0.3)
        await self.send("Input.insertText", text=text)

    async def press_enter(self) -> None:
        """Press the Enter key (in the focused element)."""
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
                **({"text": "\r"} if kind == "keyDown" else {}),
            )

    async def text(self) -> str:
        """The page's visible text, shadow roots included."""
        return await self.evaluate(PAGE_TEXT) or ""

    async def wait_for_text(self, *texts: str, timeout: float = 60.0) -> str:  # noqa: ASYNC109
        """Wait until the page shows every one of ``texts``; the page text."""
        deadline = time.monotonic() + timeout
        while True:
            text = await self.text()
            if all(part in text for part in texts):
                return text
            if time.monotonic() > deadline:
                missing = [part for part in texts if part not in text]
                msg = f"the page does not show {missing}; it shows: {text[:1500]}"
                raise BrowserError(msg)
            await asyncio.sleep(0.5)

    async def screenshot(self) -> bytes:
        """The visible page as PNG."""
        result = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

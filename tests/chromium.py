"""A small headless-Chromium driver for the page tests and the report benchmark.

It speaks the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4,
JSON messages separated by NUL bytes), so it needs nothing but the Debian ``chromium`` package:
no websocket client, no Playwright browser download.  The network is cut (offline emulation and
a dead proxy) and every request the page makes is recorded, so a test can prove a page works
opened from disk with no network.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--remote-debugging-pipe")


def find_chromium() -> str | None:
    env = os.environ.get("WN_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class BrowserError(RuntimeError):
    pass


@dataclass
class PageState:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    loaded: bool = False


class Chromium:
    """One headless browser; ``open(url)`` gives a tab (DevTools session) with the network cut."""

    def __init__(self, executable: str | None = None, *, timeout: float = 60.0):
        executable = executable or find_chromium()
        if not executable:
            raise BrowserError("no chromium executable found")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="wn-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:   # in the child: fd 3 reads our commands, fd 4 writes the replies
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)   # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)   # dup2 makes them inheritable; every other fd of ours is not
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=wire, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.version = self.send("Browser.getVersion")["product"]

    # -- protocol ------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for chromium")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium exited (code {self.proc.poll()})")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, ev in enumerate(self._events):
                if ev["method"] == method and ev.get("sessionId") == session:
                    return self._events.pop(i)
            msg = self._read_message(deadline)
            if "method" in msg:
                self._events.append(msg)

    def drain(self, session: str) -> list[dict[str, Any]]:
        mine = [e for e in self._events if e.get("sessionId") == session]
        self._events = [e for e in self._events if e.get("sessionId") != session]
        return mine

    # -- tabs ------------------------------------------------------------------------------
    def open(self, url: str, *, width: int = 1280, height: int = 900) -> "Tab":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session, target)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                       "uploadThroughput": -1}, session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        tab.goto(url)
        return tab

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Tab:
    def __init__(self, browser: Chromium, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target
        self.state = PageState()

    def goto(self, url: str) -> float:
        """Navigate and wait for the load event; returns the wall seconds it took."""
        self.state = PageState()
        start = time.perf_counter()
        self.browser.send("Page.navigate", {"url": url}, session=self.session)
        self.browser.wait_event("Page.loadEventFired", self.session)
        self.state.loaded = True
        return time.perf_counter() - start

    def collect(self) -> PageState:
        """Fold the events seen so far into console errors and requests."""
        for ev in self.browser.drain(self.session):
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                self.state.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                          for a in p.get("args", [])))
            elif ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                self.state.console_errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                self.state.console_errors.append(p["entry"].get("text", ""))
            elif ev["method"] == "Network.requestWillBeSent":
                self.state.requests.append(p.get("request", {}).get("url", ""))
        return self.state

    def evaluate(self, expression: str) -> Any:
        res = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                     "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in res:
            raise BrowserError(f"evaluate failed: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def screenshot(self, path: Path, *, full_page: bool = True, max_height: int = 16000) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.browser.send("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height),
                                "scale": 1})
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


# -- pytest helpers -------------------------------------------------------------------------
def browser_fixture():
    """A module-scoped pytest fixture: one Chromium per test module, or a loud skip without one."""
    import pytest

    @pytest.fixture(scope="module")
    def browser():
        exe = find_chromium()
        if not exe:
            pytest.skip("SKIPPED LOUDLY: no headless Chromium (Debian package `chromium`; .ci/run installs it): "
                        "the page tests need a real browser")
        with Chromium(exe) as b:
            yield b

    return browser


def page_summary_js() -> str:
    """JavaScript returning every chart's size and mark count, for 'each chart rendered' checks."""
    return """(() => Array.from(document.querySelectorAll('figure.chart')).map(f => {
        const svg = f.querySelector('svg, canvas');
        const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
        return {cls: f.className, hidden: !f.offsetParent, width: r.width, height: r.height,
                marks: svg ? svg.querySelectorAll('g.role-mark > *').length : 0,
                points: svg ? svg.querySelectorAll('g.mark-symbol.role-mark > path').length : 0,
                metric: f.closest('[data-metric]') ? f.closest('[data-metric]').getAttribute('data-metric') : null,
                slice: f.closest('[data-slice]') ? f.closest('[data-slice]').getAttribute('data-slice') : null};
    }))()"""

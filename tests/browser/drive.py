#!/usr/bin/env python3
"""Drives the system's headless Chromium through the Chrome DevTools Protocol, as a person
would use a page: open it, type into fields, click buttons, read what it shows.

Standard library only. Chromium speaks CDP over a pipe (`--remote-debugging-pipe`: it
reads commands from fd 3 and writes answers to fd 4, each message a JSON text ended by a
NUL byte), so there is no port to find and no WebSocket client to install.

Usage: drive.py < steps.json, where steps.json is a JSON array of steps:

  ["open", URL]                  navigate and wait for the load event
  ["fill", SELECTOR, TEXT]       focus the field, clear it and type TEXT
  ["click", SELECTOR]            a real mouse click in the middle of the element
  ["files", SELECTOR, [PATH...]] pick these files in the file input SELECTOR
  ["text", TEXT]                 wait until the page's visible text contains TEXT
  ["no-text", TEXT]              the page's visible text does not contain TEXT now
  ["js", EXPRESSION]             wait until EXPRESSION is truthy
  ["screenshot", PATH]           save a PNG of the whole page
  ["screenshot", PATH, OPTIONS]  save a PNG of one screen: OPTIONS {"window": [W, H]}
                                 emulates a desktop screen of W x H CSS pixels at device
                                 scale factor 1 for the shot ("scrollTo": SELECTOR puts
                                 that element at its top; "hide": SELECTOR hides those
                                 elements, passing messages say), then restores both
  ["save", EXPRESSION, PATH]     evaluate EXPRESSION once (awaiting a promise) and write
                                 its value, a string, to PATH
  ["downloads", DIR]             let the page download files, into DIR
  ["downloaded", COUNT]          wait until COUNT downloads are complete on disk (the page
                                 may finish before the browser has written the file)
  ["viewport", WIDTH, HEIGHT]     emulate a screen of this size (a phone's, say)
  ["timezone", ZONE]              run the page in this IANA time zone ("Asia/Kolkata")
  ["clipboard"]                  let pages read the clipboard (navigator.clipboard.readText,
                                 to check what a copy button wrote; writing needs no grant)
  ["init-script", SOURCE]        run SOURCE in every document before its own scripts
                                 (to stand in for a browser dialog, say)
  ["stop-workers"]               stop every service worker at once (as the browser does
                                 to one it deems stuck, or a crash would)
  ["throttle", BYTES]            limit the page's network to BYTES per second each way
                                 (a slow link: downloads that outlast a token, say)
  ["heap", EXPRESSION, BYTES]    wait until EXPRESSION is truthy while sampling the
                                 memory of the page and of its origin's service workers
                                 (see Browser.memory); fails if their sum ever exceeds
                                 BYTES after a full garbage collection. Every LIVE_EVERY
                                 seconds, and whenever a sample is over BYTES, it collects
                                 first: it prints the peak of what survived (what the tab
                                 holds) and the peak before collections (garbage included)

Waiting steps give up after --timeout seconds (default 10). A click waits until its
element is on top and has stopped moving. Any uncaught script error or
Content-Security-Policy violation on the page fails the run. Exits 0 when every step
passed; otherwise prints which step failed, what the page showed and what its live
regions (toasts) had said, and exits 1 (2 when Chromium cannot be started). Chromium is found as $SBX_CHROMIUM, or `chromium`,
`chromium-browser`, `google-chrome` on PATH. Its traffic to anything but loopback goes
to a dead proxy, so a run never leaves the machine.
"""

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time

# Kept in every document: what its live regions (toasts, statuses, alerts) said, so a
# failed step can report a message that had already gone (a toast lasts a few seconds).
ANNOUNCED = """(() => {
  const said = (window.__sbxAnnounced = []);
  const note = (node) => {
    const element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement;
    if (!element?.closest("[role=status], [role=alert], [aria-live]")) return;
    const text = (node.textContent || "").trim();
    if (text && said.length < 50 && said[said.length - 1] !== text) said.push(text);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "characterData") note(record.target);
      else record.addedNodes.forEach(note);
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();"""
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Seconds between the `heap` step's full garbage collections (what survives is measured).
LIVE_EVERY = 1.0


class StepFailed(Exception):
    pass


def high_fd(fd):
    """A close-on-exec copy of `fd` numbered 10 or more; closes `fd`."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium and one page in it."""

    def __init__(self, executable, profile_dir, log_path):
        cmd_read, cmd_write = os.pipe()
        resp_read, resp_write = os.pipe()
        # The child's ends move above fd 10 first, so no spawn action below overwrites
        # another's source, nor is a no-op that would keep close-on-exec set.
        cmd_read, resp_write = (high_fd(cmd_read), high_fd(resp_write))
        args = [
            executable,
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile_dir}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--no-pings",
            "--password-store=basic",
            "--use-mock-keychain",
            # Loopback is always reached directly; everything else meets a closed port.
            "--proxy-server=http://127.0.0.1:9",
            # The tests' servers may use a self-signed certificate.
            "--ignore-certificate-errors",
            "--window-size=1024,900",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Chromium's sandbox refuses to run as root (CI, containers).
            args.insert(1, "--no-sandbox")
        self.log_path = log_path
        log = high_fd(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        # The pipe ends become the child's fds 3 and 4, after its standard streams; every
        # other descriptor of this process is close-on-exec (PEP 446), so none leaks.
        self.pid = os.posix_spawn(
            executable,
            args,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
                (os.POSIX_SPAWN_DUP2, cmd_read, 3),
                (os.POSIX_SPAWN_DUP2, resp_write, 4),
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            ],
        )
        for fd in (log, cmd_read, resp_write):
            os.close(fd)
        self.to_browser = cmd_write
        self.from_browser = resp_read
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.problems = []
        self.session = None

    # --- protocol -------------------------------------------------------------------

    def _send(self, message):
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self.to_browser, data)
            data = data[written:]

    def _receive(self, deadline):
        """The next message, or None when the deadline passes first."""
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise StepFailed("Chromium closed the DevTools pipe (it exited)\n" + self.log_tail())
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event):
        """Keeps events, and remembers the ones that make the page broken."""
        self.events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"uncaught script error: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("source") == "security" or "Content Security Policy" in entry.get("text", ""):
                self.problems.append(f"security: {entry.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            texts = [a.get("value") or a.get("description") for a in params.get("args", [])]
            if any("Content Security Policy" in str(t) for t in texts):
                self.problems.append(f"console: {' '.join(map(str, texts))}")

    def call(self, method, params=None, timeout=15, session=True):
        """Sends a command to the page (`session` True), the browser (False) or the target
        of the session id `session`, and returns its result."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if isinstance(session, str):
            message["sessionId"] = session
        elif session and self.session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer is None:
                raise StepFailed(f"Chromium did not answer {method} within {timeout} s")
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise StepFailed(f"{method} failed: {answer['error']}")
                return answer.get("result", {})

    def wait_event(self, method, timeout):
        """Waits for an event of this kind that arrives from now on."""
        seen = len(self.events)
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[seen:]:
                if event["method"] == method:
                    return event
            seen = len(self.events)
            if self._receive(deadline) is None:
                raise StepFailed(f"no {method} within {timeout} s")

    def start_page(self):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": ANNOUNCED})

    def evaluate(self, expression, timeout=15):
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise StepFailed(f"evaluating {expression!r}: {text}")
        return result.get("result", {}).get("value")

    def wait_until(self, expression, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(expression):
                    return
            except StepFailed:
                # A navigation between two evaluations destroys the page's context; the
                # next evaluation runs in the new page.
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {timeout} s waiting for {what}")
            # Let events arrive while waiting.
            self._receive(time.monotonic() + 0.1)

    def check_page(self):
        if self.problems:
            raise StepFailed("the page reported problems:\n  " + "\n  ".join(self.problems))

    def visible_text(self):
        try:
            return self.evaluate("document.body ? document.body.innerText : ''") or ""
        except StepFailed as error:
            return f"(unreadable: {error})"

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as log:
                return log.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (StepFailed, OSError):
            pass
        deadline = time.monotonic() + 5
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- memory ---------------------------------------------------------------------

    def worker_sessions(self):
        """DevTools sessions of the service workers running now (attached once each)."""
        sessions = getattr(self, "_workers", {})
        self._workers = sessions
        targets = self.call("Target.getTargets", session=False)["targetInfos"]
        live = {t["targetId"] for t in targets if t["type"] == "service_worker"}
        for target in live - sessions.keys():
            try:
                attached = self.call(
                    "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
                )
                sessions[target] = attached["sessionId"]
            except StepFailed:
                pass  # It stopped between the listing and the attach.
        for gone in sessions.keys() - live:
            del sessions[gone]
        return list(sessions.values())

    def collect_garbage(self):
        """A full garbage collection in the page and in every service worker."""
        for session in [True] + self.worker_sessions():
            try:
                self.call("HeapProfiler.collectGarbage", session=session, timeout=30)
            except StepFailed:
                if session is True:
                    raise

    def memory(self):
        """What the page and its service workers hold now, in bytes, by part.

        `Runtime.getHeapUsage`'s `usedSize` is V8's heap only: the bytes of ArrayBuffers and
        typed arrays (every chunk a download streams, decrypts and writes) live outside it,
        in backing stores, which the same answer reports as `backingStorageSize` (Chromium
        124 and later; checked on 156), beside `embedderHeapUsedSize` (Blink's own heap).
        The measure is the sum of the three, for the page and for each service worker
        (the download worker decrypts there), so a page or worker that keeps a file's bytes
        in buffers is caught however it holds them. A browser that does not report a field
        fails the step rather than measuring less than it claims."""
        parts = {}
        for name, session in [("page", True)] + [
            (f"worker{n}", s) for n, s in enumerate(self.worker_sessions())
        ]:
            try:
                usage = self.call("Runtime.getHeapUsage", session=session)
            except StepFailed:
                if name == "page":
                    raise
                continue  # The worker stopped while it was sampled.
            missing = [k for k in ("usedSize", "embedderHeapUsedSize", "backingStorageSize") if k not in usage]
            if missing:
                raise StepFailed(f"Runtime.getHeapUsage gives no {missing}: this Chromium cannot measure buffers")
            parts[name] = {
                "js": usage["usedSize"],
                "embedder": usage["embedderHeapUsedSize"],
                "buffers": usage["backingStorageSize"],
            }
        return parts

    # --- steps ----------------------------------------------------------------------

    def element_expression(self, selector, body):
        """JS that runs `body` with `element` bound to the visible, enabled `selector`."""
        return (
            "(() => {"
            f" const element = document.querySelector({json.dumps(selector)});"
            " if (!element || element.getClientRects().length === 0 || element.disabled) return null;"
            f" {body}"
            "})()"
        )

    def wait_for_element(self, selector, timeout):
        self.wait_until(
            self.element_expression(selector, "return true;"),
            timeout,
            f"{selector} to be visible and enabled",
        )

    def click_point(self, selector, timeout):
        """Where a click lands on `selector`: the middle of the element once it is visible,
        enabled, on top at that point (it or its label) and has stayed at the same place
        for two polls (scrolled into view only when it is not there, so a poll does not
        undo what moved it). A page still drawing (a section above it filling in) moves elements
        between the moment a point is measured and the moment the mouse presses; a click
        measured too early lands on whatever took the element's place."""
        measure = self.element_expression(
            selector,
            " const hits = (x, y) => { const top = document.elementFromPoint(x, y);"
            "   return Boolean(top) && (element.contains(top)"
            "     || [...(element.labels ?? [])].some((label) => label.contains(top))); };"
            " let r = element.getBoundingClientRect();"
            " let x = r.x + r.width / 2, y = r.y + r.height / 2;"
            " if (!hits(x, y)) { element.scrollIntoView({block: 'center'});"
            "   r = element.getBoundingClientRect(); x = r.x + r.width / 2; y = r.y + r.height / 2; }"
            " return hits(x, y) ? [x, y] : null;",
        )
        deadline = time.monotonic() + timeout
        last = None
        while True:
            point = self.evaluate(measure)
            if point is not None and point == last:
                return point
            last = point
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {timeout} s waiting for {selector} to be visible, enabled and on top")
            time.sleep(0.05)

    def run(self, step, timeout):
        verb, *args = step
        if verb == "open":
            (url,) = args
            self.call("Page.navigate", {"url": url})
            self.wait_event("Page.loadEventFired", timeout)
            # Module scripts run after parsing, before the load event; give promise
            # continuations one turn.
            self.evaluate("new Promise((resolve) => setTimeout(resolve, 0))")
        elif verb == "fill":
            selector, text = args
            self.wait_for_element(selector, timeout)
            self.evaluate(
                self.element_expression(
                    selector, "element.focus(); element.value = ''; return true;"
                )
            )
            self.call("Input.insertText", {"text": text})
            typed = self.evaluate(self.element_expression(selector, "return element.value;"))
            if typed != text:
                raise StepFailed(f"{selector} holds {typed!r} after typing")
        elif verb == "files":
            selector, paths = args
            self.wait_for_element(selector, timeout)
            root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
            node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
            self.call("DOM.setFileInputFiles", {"files": paths, "nodeId": node})
        elif verb == "click":
            (selector,) = args
            x, y = self.click_point(selector, timeout)
            self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
            for kind in ("mousePressed", "mouseReleased"):
                self.call(
                    "Input.dispatchMouseEvent",
                    {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                )
        elif verb == "text":
            (text,) = args
            self.wait_until(
                f"document.body && document.body.innerText.includes({json.dumps(text)})",
                timeout,
                f"the text {text!r}",
            )
        elif verb == "no-text":
            (text,) = args
            if text in self.visible_text():
                raise StepFailed(f"the page shows {text!r}")
        elif verb == "js":
            (expression,) = args
            self.wait_until(expression, timeout, expression)
        elif verb == "save":
            expression, path = args
            value = self.evaluate(expression, timeout=timeout)
            if not isinstance(value, str):
                raise StepFailed(f"the expression gave {type(value).__name__}, not a string")
            with open(path, "w", encoding="utf-8") as out:
                out.write(value)
        elif verb == "downloads":
            (directory,) = args
            self.call(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": directory, "eventsEnabled": True},
                session=False,
            )
        elif verb == "downloaded":
            (count,) = args
            deadline = time.monotonic() + timeout
            while True:
                states = {}
                for event in self.events:
                    if event["method"] == "Browser.downloadProgress":
                        states[event["params"]["guid"]] = event["params"]["state"]
                done = sum(1 for state in states.values() if state == "completed")
                if done >= count:
                    break
                if time.monotonic() > deadline:
                    raise StepFailed(f"{done} of {count} downloads completed within {timeout} s ({states})")
                self._receive(time.monotonic() + 0.2)
        elif verb == "viewport":
            width, height = args
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
            )
        elif verb == "clipboard":
            # Headless Chromium keeps a clipboard of its own: what a page wrote, another
            # read gives back once reading is granted.
            self.call(
                "Browser.grantPermissions",
                {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
                session=False,
            )
        elif verb == "timezone":
            (zone,) = args
            self.call("Emulation.setTimezoneOverride", {"timezoneId": zone})
        elif verb == "init-script":
            (source,) = args
            self.call("Page.addScriptToEvaluateOnNewDocument", {"source": source})
        elif verb == "stop-workers":
            self.call("ServiceWorker.enable")
            self.call("ServiceWorker.stopAllWorkers")
        elif verb == "throttle":
            (rate,) = args
            self.call("Network.enable")
            self.call(
                "Network.emulateNetworkConditions",
                {"offline": False, "latency": 0, "downloadThroughput": rate, "uploadThroughput": rate},
            )
        elif verb == "heap":
            expression, limit = args
            deadline = time.monotonic() + timeout
            live_peak, live_parts, raw_peak, samples, collections = 0, {}, 0, 0, 0
            next_live = time.monotonic()
            while True:
                parts = self.memory()
                used = sum(sum(p.values()) for p in parts.values())
                samples += 1
                raw_peak = max(raw_peak, used)
                # What the tab holds is what survives a full collection: V8 frees the
                # backing stores of spent buffers only once their external memory grows
                # past its own soft limit (about 64 MB), so a stream's spent chunks sit in
                # the raw figure for a while. Collected every LIVE_EVERY seconds, and
                # whenever a sample is over the bound (held, or garbage?).
                if used > limit or time.monotonic() >= next_live:
                    raw = used
                    self.collect_garbage()
                    collections += 1
                    next_live = time.monotonic() + LIVE_EVERY
                    parts = self.memory()
                    used = sum(sum(p.values()) for p in parts.values())
                    if used > limit:
                        raise StepFailed(
                            f"the tab's memory (JS heaps and buffers) reached {used} bytes "
                            f"after a full garbage collection ({raw} before; limit {limit}): "
                            f"{json.dumps(parts)}"
                        )
                    if used > live_peak:
                        live_peak, live_parts = used, parts
                if self.evaluate(expression):
                    break
                if time.monotonic() > deadline:
                    raise StepFailed(f"timed out after {timeout} s waiting for {expression}")
                self._receive(time.monotonic() + 0.2)
            print(
                f"drive.py: peak memory {live_peak} bytes after full collections "
                f"({collections} over {samples} samples): {json.dumps(live_parts)}; "
                f"peak before collections {raw_peak} bytes (limit {limit})",
                file=sys.stderr,
            )
        elif verb == "screenshot":
            path, *rest = args
            options = rest[0] if rest else {}
            if "window" in options:
                width, height = options["window"]
                self.call(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                )
                target = options.get("scrollTo")
                if target:
                    self.wait_for_element(target, timeout)
                    self.evaluate(
                        self.element_expression(
                            target, "element.scrollIntoView({block: 'start'}); return true;"
                        )
                    )
                else:
                    self.evaluate("(window.scrollTo(0, 0), true)")
                hide = options.get("hide")
                if hide:
                    self.evaluate(
                        f"(document.querySelectorAll({json.dumps(hide)}).forEach((e) => "
                        "e.style.setProperty('visibility', 'hidden')), true)"
                    )
                # Two frames: the new layout is painted before the capture.
                self.evaluate(
                    "new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true))))"
                )
                shot = self.call("Page.captureScreenshot", {"format": "png"})
                if hide:
                    self.evaluate(
                        f"(document.querySelectorAll({json.dumps(hide)}).forEach((e) => "
                        "e.style.removeProperty('visibility')), true)"
                    )
                self.call("Emulation.clearDeviceMetricsOverride")
            else:
                shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            with open(path, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
        else:
            raise StepFailed(f"unknown step {verb!r}")
        self.check_page()


def find_browser():
    configured = os.environ.get("SBX_CHROMIUM")
    if configured:
        return shutil.which(configured) or configured
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def describe(step):
    """The step for a failure message; typed text is not repeated (it may be a password)."""
    if step and step[0] == "fill":
        return f"fill {step[1]}"
    return " ".join(str(part) for part in step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a step may wait")
    options = parser.parse_args()
    steps = json.load(sys.stdin)
    if not isinstance(steps, list) or not all(isinstance(s, list) and s for s in steps):
        print("drive.py: stdin must be a JSON array of steps (arrays)", file=sys.stderr)
        return 2

    executable = find_browser()
    if executable is None:
        print(
            "drive.py: no Chromium found (set SBX_CHROMIUM, or `apt-get install chromium`)",
            file=sys.stderr,
        )
        return 2

    with tempfile.TemporaryDirectory(prefix="sbx-chromium-") as profile:
        browser = Browser(executable, os.path.join(profile, "profile"), os.path.join(profile, "chromium.log"))
        current = None
        try:
            try:
                browser.call("Browser.getVersion", session=False, timeout=30)
            except StepFailed as error:
                print(f"drive.py: Chromium did not start: {error}\n{browser.log_tail()}", file=sys.stderr)
                return 2
            browser.start_page()
            for number, step in enumerate(steps, 1):
                current = f"step {number} ({describe(step)})"
                browser.run(step, options.timeout)
            return 0
        except StepFailed as error:
            print(f"drive.py: {current or 'start'} failed: {error}", file=sys.stderr)
            try:
                where = browser.evaluate("location.href")
            except StepFailed:
                where = "?"
            print(f"--- page {where} shows:\n{browser.visible_text()}\n---", file=sys.stderr)
            try:
                said = browser.evaluate("window.__sbxAnnounced ?? []") or []
            except StepFailed:
                said = []
            if said:
                print("--- its live regions said (toasts, statuses), oldest first:", file=sys.stderr)
                print("\n".join(said) + "\n---", file=sys.stderr)
            return 1
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Browser tests of the chat page (/app/) and the API reference (/docs/), in headless Chromium.

Two browsers are two users, A and B, on a service this script starts (and restarts) itself:
AUTH_MODE=jwt with a random secret and DEV_TOKENS on, CHANNEL_ACCESS=open, no rate limit.
A signs in with the page's development-token button, B pastes a token into the form.

  - A sends, B sees it within 1 s without reloading; B reacts and A's count changes live;
    A edits and deletes and B sees both; an edit made on a stale copy shows the 412 as worded;
  - a reply in the side thread reaches the other user; unread counts and the read marker;
  - B scrolls back through 300 messages: every seq from 1 to 300 once, in order;
  - the service restarts while both pages are open; afterwards a message A sends reaches B;
  - /docs/ renders the spec and a "try it out" call of getLimits answers 200.

Screenshots go to SCREENSHOTS (default .local/browser-screenshots/). Exit status 1 on any
failure. tools/browser-tests.sh installs Chromium, its driver and Selenium, then runs this.
"""
import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
import urllib.request
import uuid

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Server:
    """The service under test, as a child process that can be stopped and started again."""

    def __init__(self, binary, port):
        self.binary, self.port, self.process = binary, port, None
        self.base = "http://127.0.0.1:%d" % port
        self.env = dict(
            os.environ,
            PORT=str(port),
            AUTH_MODE="jwt",
            JWT_SECRET=secrets.token_hex(32),
            # Fixed for the run, so the page's cursors stay valid across the restart.
            CURSOR_SECRET=secrets.token_hex(32),
            DEV_TOKENS="true",
            WEB_CLIENT="true",
            CHANNEL_ACCESS="open",
            RATE_LIMIT_RPS="0",
            LOG_LEVEL="error",
            SHUTDOWN_DRAIN_MS="0",
            # Frequent heartbeats: a stream whose client left frees its slot within a second.
            STREAM_HEARTBEAT_MS="1000",
        )
        self.log = open(os.path.join(ROOT, ".local", "browser-test-service.log"), "ab")

    def start(self):
        self.process = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/health/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the service did not become ready within 30 s")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def call(self, method, path, token=None, body=None, headers=None):
        request = urllib.request.Request(self.base + path, method=method)
        if token:
            request.add_header("Authorization", "Bearer " + token)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        with urllib.request.urlopen(request, data=data, timeout=10) as response:
            text = response.read()
            return json.loads(text) if text else None


def browser(chromium, chromedriver):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    # An explicit driver: Selenium must not look for one on the network.
    return webdriver.Chrome(service=Service(chromedriver), options=options)


class Page:
    """One user's chat page."""

    def __init__(self, driver, name, shots):
        self.driver, self.name, self.shots = driver, name, shots

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, condition, timeout, what):
        try:
            # The page rebuilds a message's element when it changes: an element found a moment ago
            # may be gone by the time it is read; the next poll finds the new one.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.02,
                                 ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
                lambda _: condition())
        except TimeoutException:
            self.shot("failed")
            raise AssertionError("%s: %s (not within %.1f s)" % (self.name, what, timeout)) from None

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, label):
        path = os.path.join(self.shots, "%s-%s.png" % (self.name, label))
        self.driver.save_screenshot(path)
        return path

    def type_into(self, css, text):
        element = self.find(css)
        element.clear()
        element.send_keys(text)

    def open_channel(self, channel):
        self.type_into("#channel-id", channel)
        self.find("#open-channel").click()
        self.wait(lambda: self.find("#stream-state").get_attribute("data-state") == "live", 10, "stream live")
        self.wait(lambda: self.find("#messages").get_attribute("data-loaded") == "true", 10, "first page loaded")

    def message(self, text):
        """The timeline item whose content is `text`, or None."""
        for item in self.all("#message-list li.message"):
            if item.find_element(By.CSS_SELECTOR, ".content, .edit-form").text == text:
                return item
        return None

    def item(self, message_id, root="#message-list"):
        found = self.all('%s li[data-id="%s"]' % (root, message_id))
        return found[0] if found else None

    def send(self, text):
        self.type_into("#message-input", text)
        self.find("#send").click()

    def send_and_edit(self, text):
        """Sends `text`, waits until the service stored it, opens its edit form; its id."""
        self.send(text)
        self.wait(lambda: self.message(text) and self.message(text).get_attribute("data-seq"), 5, "%r sent" % text)
        message_id = self.message(text).get_attribute("data-id")
        self.wait(lambda: self.item(message_id).find_element(By.CSS_SELECTOR, "button.edit"), 3, "edit").click()
        self.wait(lambda: self.item(message_id).find_elements(By.CSS_SELECTOR, ".edit-input"), 3, "edit field")
        return message_id

    def save_edit(self, message_id, text):
        field = self.item(message_id).find_element(By.CSS_SELECTOR, ".edit-input")
        field.clear()
        field.send_keys(text)
        self.item(message_id).find_element(By.CSS_SELECTOR, "button.save-edit").click()

    def error_text(self):
        box = self.find("#error")
        return box.text if box.is_displayed() else ""


def check_docs(server, driver, shots):
    page = Page(driver, "docs", shots)
    driver.get(server.base + "/docs/")
    page.wait(lambda: "messages-service" in page.js(
        "const t = document.querySelector('.swagger-ui .info .title'); return t ? t.textContent : ''"),
        20, "Swagger UI shows the spec's title")
    operation = page.wait(lambda: page.all("#operations-limits-getLimits"), 10, "getLimits is listed")[0]
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    page.wait(lambda: page.all("#operations-limits-getLimits .try-out__btn"), 5, "Try it out button")[0].click()
    page.wait(lambda: page.all("#operations-limits-getLimits .execute"), 5, "Execute button")[0].click()
    status = page.wait(lambda: page.js(
        "const c = document.querySelector('#operations-limits-getLimits .live-responses-table tbody .response-col_status');"
        "return c ? c.textContent.trim() : ''"), 10, "a live response")
    page.shot("try-it-out")
    assert status.startswith("200"), "try it out answered %r" % status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "messages-service"))
    parser.add_argument("--port", type=int, default=18082)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--screenshots", default=os.environ.get("SCREENSHOTS", os.path.join(ROOT, ".local", "browser-screenshots")))
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    server = Server(args.binary, args.port)
    drivers = []
    passed, failed = [], []

    def run(name, test):
        started = time.time()
        try:
            test()
            passed.append(name)
            print("[browser] ok   %s (%.1f s)" % (name, time.time() - started), flush=True)
        except Exception:
            failed.append(name)
            print("[browser] FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)

    try:
        server.start()
        driver_a, driver_b = browser(args.chromium, args.chromedriver), browser(args.chromium, args.chromedriver)
        drivers += [driver_a, driver_b]
        a, b = Page(driver_a, "a", args.screenshots), Page(driver_b, "b", args.screenshots)
        channel = str(uuid.uuid4())
        state = {}

        def sign_in():
            # A: the development button; B: a token pasted into the form.
            driver_a.get(server.base + "/app/")
            a.wait(lambda: a.find("#dev-token-form").is_displayed(), 10, "the development sign-in shows")
            a.find("#dev-token").click()
            a.wait(lambda: a.find("#chat").is_displayed(), 10, "signed in")
            state["a_user"] = a.find("#whoami").text.split(" ")[0]
            minted = server.call("POST", "/dev/token", body={})
            state["b_token"], state["b_user"] = minted["token"], minted["user_id"]
            driver_b.get(server.base + "/app/")
            b.wait(lambda: b.find("#token").is_displayed(), 10, "the token form shows")
            b.type_into("#token", minted["token"])
            b.find("#sign-in").click()
            b.wait(lambda: b.find("#whoami").text.startswith(minted["user_id"]), 10, "B signed in as its token's user")
            assert uuid.UUID(state["a_user"]), state["a_user"]
            state["a_token"] = a.js("return sessionStorage.getItem('token')")
            a.open_channel(channel)
            b.open_channel(channel)

        def live_send():
            a.send("hello from A")
            sent = time.time()
            b.wait(lambda: b.message("hello from A"), 1.0, "A's message appears on B's page")
            print("[browser]      B saw A's message %.0f ms after the click" % ((time.time() - sent) * 1000))
            a.wait(lambda: a.message("hello from A") and not a.all("#message-list li.pending"), 5, "A's own copy confirmed")
            state["first"] = a.message("hello from A").get_attribute("data-id")
            b.shot("live")

        def live_reaction():
            b.item(state["first"]).find_element(By.CSS_SELECTOR, 'button.reaction[data-emoji="👍"]').click()
            a.wait(lambda: a.item(state["first"]).find_element(By.CSS_SELECTOR, 'button.reaction[data-emoji="👍"]')
                   .get_attribute("data-count") == "1", 3, "A's 👍 count becomes 1")
            b.wait(lambda: "reacted" in b.item(state["first"]).find_element(
                By.CSS_SELECTOR, 'button.reaction[data-emoji="👍"]').get_attribute("class"), 3, "B's button shows its reaction")
            a.shot("reaction")

        def live_edit_and_delete():
            message_id = a.send_and_edit("to be edited")
            a.save_edit(message_id, "edited by A")
            b.wait(lambda: b.item(message_id) and b.item(message_id).find_element(By.CSS_SELECTOR, ".content").text
                   == "edited by A", 3, "B sees the edit")
            a.wait(lambda: a.item(message_id).find_element(By.CSS_SELECTOR, "button.delete"), 3, "delete").click()
            b.wait(lambda: "deleted" in b.item(message_id).get_attribute("class"), 3, "B sees the tombstone")
            assert b.item(message_id).find_element(By.CSS_SELECTOR, ".content").text == "this message was deleted"
            b.shot("tombstone")

        def edit_conflict():
            message_id = a.send_and_edit("edited twice")
            # Meanwhile the same user edits it elsewhere (another device): the page's copy is stale.
            version = int(a.item(message_id).get_attribute("data-version"))
            server.call("PATCH", "/v1/channels/%s/messages/%s" % (channel, message_id), token=state["a_token"],
                        body={"content": "changed on another device"})
            # The stream brings the change; the open edit keeps the version it started from.
            a.wait(lambda: int(a.item(message_id).get_attribute("data-version")) > version, 3, "the change arrives")
            a.save_edit(message_id, "edit on a stale copy")
            a.wait(lambda: "If-Match does not match the current version" in a.error_text(), 3, "the 412 is shown as worded")
            a.wait(lambda: a.item(message_id).find_element(By.CSS_SELECTOR, ".edit-conflict").text
                   == "changed meanwhile to: changed on another device", 3, "the other change is shown")
            assert a.item(message_id).find_element(By.CSS_SELECTOR, ".edit-input").get_attribute("value") \
                == "edit on a stale copy", "the draft is kept"
            a.shot("conflict")
            a.wait(lambda: a.item(message_id).find_element(By.CSS_SELECTOR, "button.cancel-edit"), 3, "cancel").click()
            a.wait(lambda: a.item(message_id).find_element(By.CSS_SELECTOR, ".content").text
                   == "changed on another device", 3, "the current text after cancelling")

        def edit_after_a_reaction():
            # A reaction changes the version, not the text: the save goes through.
            message_id = a.send_and_edit("reacted while edited")
            version = int(a.item(message_id).get_attribute("data-version"))
            b.wait(lambda: b.item(message_id), 3, "B has it")
            b.wait(lambda: b.item(message_id).find_element(By.CSS_SELECTOR, 'button.reaction[data-emoji="🎉"]'), 3,
                   "B's button").click()
            a.wait(lambda: int(a.item(message_id).get_attribute("data-version")) > version, 3, "the reaction arrives")
            a.save_edit(message_id, "edited after a reaction")
            b.wait(lambda: b.item(message_id).find_element(By.CSS_SELECTOR, ".content").text == "edited after a reaction",
                   3, "B sees the edit")

        def thread_reply():
            b.item(state["first"]).find_element(By.CSS_SELECTOR, "button.reply").click()
            b.wait(lambda: b.find("#thread").is_displayed(), 3, "B's thread panel opens")
            b.type_into("#reply-input", "a reply from B")
            b.find("#send-reply").click()
            a.wait(lambda: a.item(state["first"]).find_element(By.CSS_SELECTOR, "button.reply").text == "Reply (1)",
                   3, "A sees the reply count")
            a.item(state["first"]).find_element(By.CSS_SELECTOR, "button.reply").click()
            a.wait(lambda: [e.text for e in a.all("#thread-messages li .content")] == ["a reply from B"], 3,
                   "A's thread shows B's reply")
            assert not a.message("a reply from B"), "a reply must not show in the timeline"
            a.shot("thread")

        def unread_and_read_marker():
            other = str(uuid.uuid4())
            for text in ("unread one", "unread two"):
                server.call("POST", "/v1/channels/%s/messages" % other, token=state["a_token"], body={"content": text})
            b.open_channel(other)
            b.wait(lambda: b.find("#unread").get_attribute("data-initial") == "2", 3, "B's page counted 2 unread")
            b.wait(lambda: b.all("#message-list .unread-divider"), 3, "the new-messages divider shows")
            b.wait(lambda: server.call("GET", "/v1/channels/%s/read" % other, token=state["b_token"])["unread"] == 0,
                   5, "B's page marks what it showed as read")
            b.shot("unread")
            b.open_channel(channel)

        def scroll_back():
            long_channel = str(uuid.uuid4())
            for n in range(1, 301):
                server.call("POST", "/v1/channels/%s/messages" % long_channel, token=state["a_token"],
                            body={"content": "history %d" % n})
            b.open_channel(long_channel)
            deadline = time.time() + 60
            while time.time() < deadline:
                if b.find("#older-state").text == "the beginning of the channel":
                    break
                b.js("document.getElementById('messages').scrollTop = 0")
                time.sleep(0.2)
            seqs = [int(e.get_attribute("data-seq")) for e in b.all("#message-list li.message")]
            ids = [e.get_attribute("data-id") for e in b.all("#message-list li.message")]
            assert seqs == list(range(1, 301)), "seqs after scrolling back: %d items, first %s, last %s" % (
                len(seqs), seqs[:3], seqs[-3:])
            assert len(set(ids)) == 300, "duplicate ids"
            b.shot("scrolled-back")
            b.open_channel(channel)

        def restart():
            server.stop()
            b.wait(lambda: b.find("#stream-state").get_attribute("data-state") != "live", 10, "B notices the restart")
            server.start()
            for page in (a, b):
                page.wait(lambda page=page: page.find("#stream-state").get_attribute("data-state") == "live", 20,
                          "the stream is live again")
            a.send("after the restart")
            b.wait(lambda: b.message("after the restart"), 5, "A's message after the restart reaches B")
            assert len([e for e in b.all("#message-list li.message") if e.text.find("after the restart") >= 0]) == 1
            a.shot("after-restart")
            b.shot("after-restart")

        def streams_all_taken():
            # C already holds every stream it may (STREAM_MAX_PER_USER, 10): its page's stream gets
            # 429, yet the page shows the channel and goes live once a slot frees.
            minted = server.call("POST", "/dev/token", body={})
            held = []
            try:
                for _ in range(10):
                    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                    connection.request("GET", "/v1/channels/%s/stream" % uuid.uuid4(),
                                       headers={"Authorization": "Bearer " + minted["token"]})
                    response = connection.getresponse()
                    assert response.status == 200, response.status
                    held.append(connection)
                b.find("#sign-out").click()
                b.wait(lambda: b.find("#token").is_displayed(), 10, "signed out")
                b.type_into("#token", minted["token"])
                b.find("#sign-in").click()
                b.type_into("#channel-id", channel)
                b.find("#open-channel").click()
                b.wait(lambda: b.find("#messages").get_attribute("data-loaded") == "true", 10,
                       "the channel shows without a stream")
                assert b.message("hello from A"), "the page shows the channel's messages"
                assert b.find("#stream-state").get_attribute("data-state") != "live"
                a.send("while C had no stream")
            finally:
                for connection in held:
                    connection.close()
            b.wait(lambda: b.find("#stream-state").get_attribute("data-state") == "live", 20,
                   "the stream opens once a slot is free")
            b.wait(lambda: b.message("while C had no stream"), 5, "what was sent meanwhile arrives (resumed from the page)")
            a.send("after C's stream opened")
            b.wait(lambda: b.message("after C's stream opened"), 5, "and what is sent afterwards, live")
            b.shot("no-stream-at-first")

        run("sign in with the development button and a pasted token", sign_in)
        if not failed:
            run("A sends, B sees it within 1 s", live_send)
            run("B reacts, A's count changes live", live_reaction)
            run("A edits and deletes, B sees both", live_edit_and_delete)
            run("an edit on a stale copy shows the conflict", edit_conflict)
            run("an edit made while someone reacts is saved", edit_after_a_reaction)
            run("a reply in the thread reaches the other user", thread_reply)
            run("unread count, divider and read marker", unread_and_read_marker)
            run("B scrolls back through 300 messages, no gap or duplicate", scroll_back)
            run("the service restarts; A's next message reaches B", restart)
            run("with every stream of the user taken, the page still loads, then goes live", streams_all_taken)
        run("/docs renders the spec and try it out answers 200", lambda: check_docs(server, driver_a, args.screenshots))
    finally:
        for driver in drivers:
            driver.quit()
        server.stop()
    print("[browser] %d passed, %d failed; screenshots in %s" % (len(passed), len(failed), args.screenshots))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

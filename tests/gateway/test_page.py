"""The chat page in headless Chromium (Debian's package, driven by Playwright): send, watch, ask."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright, expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STEP_TIMEOUT_MS = 30_000  # per expectation; the page itself answers in well under a second


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system (`nox -s tests` installs it when missing)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `nox -s tests` installs it with apt-get")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def test_the_page_sends_watches_and_streams_the_answer(
    browser: Browser, gateway_url: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(gateway_url + "/")
    await expect(page.locator("#status")).to_have_text("live", timeout=STEP_TIMEOUT_MS)

    await page.fill("#content", "hello from the browser")
    await page.click("#send")
    # The message comes back through the SSE follow stream, not from the send reply.
    await expect(page.locator("#messages li .content")).to_have_text(
        ["hello from the browser"], timeout=STEP_TIMEOUT_MS
    )
    await expect(page.locator("#messages li .author")).to_have_text(["guest"])

    await page.fill("#content", "what did the browser say?")
    await page.click("#ask")
    await expect(page.locator("#answer-status")).to_have_text(
        "done: FINISH_REASON_STOP", timeout=STEP_TIMEOUT_MS
    )
    streamed = await page.locator("#answer").text_content()
    whole = await http.post(
        "/v1/completions", json={"conversationId": "lobby", "prompt": "what did the browser say?"}
    )
    assert streamed and streamed == whole.json()["text"]
    assert "hello from the browser" in streamed
    chunks = await page.locator("#answer").get_attribute("data-chunks")
    assert chunks is not None and int(chunks) > 1, "the answer arrived in several streamed chunks"

    screenshot = tmp_path / "chat-page.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    assert errors == []

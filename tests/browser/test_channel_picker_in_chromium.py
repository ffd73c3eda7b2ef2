"""Binding a channel by picking its name, in headless Chromium (issue 16, "Channels by name"): the admin app as
`ragbot serve` wires it with a bot token, its channel list from the local fake of Slack's Web API, under the CSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import store
from tests.admin.conftest import seeded_sessions
from tests.browser.conftest import LiveServer, sign_in
from tests.fake_slack import FakeSlack


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """Overrides the browser conftest's server: no pipeline is needed here, only the admin app, its users and a
    Slack directory."""
    from admin import create_admin_app
    from bot.app.web import create_http_app
    from bot.slack.channels import ChannelDirectory

    fake = FakeSlack().start()
    fake.channel("C0SALES001", "sales")
    fake.channel("C0RANDOM01", "random", member=False)
    for sessions in seeded_sessions(f"sqlite:///{tmp_path / 'admin.db'}"):
        with sessions.begin() as session:
            session.add(store.Preset(team="sales", name="sales-sso", instruction="Sales passages first"))
        channels = ChannelDirectory.for_token("xoxb-test", fake.api_url)
        app = create_admin_app(sessions, lambda: None, secret_key="k" * 40, channels=channels)
        live = LiveServer(create_http_app(None, app))
        live.sessions = sessions  # type: ignore[attr-defined]
        yield live
        live.stop()
    fake.stop()


def test_binding_a_channel_by_picking_its_name(page: Any, server: LiveServer) -> None:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(page, "sam")
    with server.sessions() as session:  # type: ignore[attr-defined]
        preset_id = store.preset_named(session, "sales-sso").id
    page.goto(f"/admin/presets/{preset_id}")
    picker = page.locator("select[name=channel_pick]")
    assert picker.locator("option").all_inner_texts() == ["— pick a channel —", "#sales (C0SALES001)"]
    picker.select_option(label="#sales (C0SALES001)")
    page.click("button:has-text('Bind channel')")
    page.wait_for_selector("#bindings li code")
    assert page.locator("#bindings li code").inner_text() == "#sales (C0SALES001)"
    with server.sessions() as session:  # type: ignore[attr-defined]
        assert store.preset_for(session, "C0SALES001").name == "sales-sso"
    assert not violations, violations

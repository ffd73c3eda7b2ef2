"""Channels by name in the admin app (issue 16): the binding form offers the bot's channels by name, and ids are
shown with their names on the presets, rankings and ranking pages. The names come from the Slack adapter's real
ChannelDirectory over the local fake of Slack's Web API, as `ragbot serve` wires it; without it, ids only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

import store
from tests.fake_slack import FakeSlack

SALES, LEGAL, OTHER = "C0SALES001", "G0LEGAL001", "C0OTHER001"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.channel(SALES, "sales")
    fake.channel(LEGAL, "legal-private", private=True)
    fake.channel(OTHER, "random", member=False)  # the bot is not in it
    yield fake
    fake.stop()


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin_app(sessions, fake_slack: FakeSlack, clock: Clock):
    from admin import create_admin_app
    from bot.app.web import create_http_app
    from bot.slack.channels import ChannelDirectory

    channels = ChannelDirectory.for_token("xoxb-test", fake_slack.api_url, clock=clock)
    return create_http_app(None, create_admin_app(sessions, lambda: None, secret_key="test-secret", channels=channels))


@pytest.fixture
def preset_id(sessions) -> int:
    with sessions.begin() as session:
        preset = store.Preset(team="sales", name="sales-sso", instruction="Sales passages first")
        session.add(preset)
        session.flush()
        return preset.id


def bound(sessions) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(select(store.ChannelBinding.channel_id, store.Preset.name).join(store.Preset))
        return dict(rows.all())


def test_the_binding_form_lists_the_bots_channels_by_name(as_user, preset_id: int) -> None:
    page = as_user("sam").get(f"/admin/presets/{preset_id}").text
    select_html = re.search(r'<select name="channel_pick">(.*?)</select>', page, re.S)
    assert select_html, "a channel picker on the binding form"
    options = re.findall(r'<option value="([^"]*)">([^<]*)</option>', select_html.group(1))
    assert options == [("", "— pick a channel —"), (LEGAL, f"#legal-private ({LEGAL})"), (SALES, f"#sales ({SALES})")]
    assert OTHER not in page  # not the bot's channel
    assert 'name="channel_id"' in page  # an id can still be typed
    assert "<script" not in page.split('id="bindings"')[1].split("</section>")[0]  # CSP: no inline script


def test_binding_by_picking_a_name_stores_the_id(sessions, as_user, preset_id: int) -> None:
    sam = as_user("sam")
    response = sam.form(f"/admin/presets/{preset_id}/bindings", {"channel_pick": SALES, "channel_id": ""})
    assert response.status_code == 303
    assert bound(sessions) == {SALES: "sales-sso"}
    assert f"#sales ({SALES})" in sam.get(f"/admin/presets/{preset_id}").text


def test_a_typed_id_still_binds_and_wins_over_the_picker(sessions, as_user, preset_id: int) -> None:
    sam = as_user("sam")
    unknown = "C0NEWCHAN9"  # the bot is not in it (yet): bound all the same, shown as the id
    response = sam.form(f"/admin/presets/{preset_id}/bindings", {"channel_pick": SALES, "channel_id": unknown})
    assert response.status_code == 303
    assert bound(sessions) == {unknown: "sales-sso"}
    page = sam.get(f"/admin/presets/{preset_id}").text
    assert f"<code>{unknown}</code>" in page


def test_a_typed_channel_name_binds_its_id(sessions, as_user, preset_id: int) -> None:
    response = as_user("sam").form(f"/admin/presets/{preset_id}/bindings", {"channel_id": "#Legal-Private"})
    assert response.status_code == 303
    assert bound(sessions) == {LEGAL: "sales-sso"}


def test_an_unknown_name_is_refused_as_before(sessions, as_user, preset_id: int) -> None:
    response = as_user("sam").form(f"/admin/presets/{preset_id}/bindings", {"channel_id": "#nowhere"})
    assert response.status_code == 422
    assert "Not a Slack channel id" in response.text
    assert bound(sessions) == {}


def test_the_presets_list_shows_names_beside_ids(sessions, as_user, preset_id: int) -> None:
    with sessions.begin() as session:
        preset = session.get(store.Preset, preset_id)
        session.add_all([store.ChannelBinding(channel_id=SALES, preset=preset)])
        session.add_all([store.ChannelBinding(channel_id="C0GONE0001", preset=preset)])
    page = as_user("alice").get("/admin/presets").text
    assert f"<code>#sales ({SALES})</code>" in page
    assert "<code>C0GONE0001</code>" in page  # unknown to Slack: the id alone


def test_refresh_fetches_the_list_again(fake_slack: FakeSlack, clock: Clock, as_user, preset_id: int) -> None:
    from bot.slack.channels import MIN_REFRESH_S

    sam = as_user("sam")
    assert "#support" not in sam.get(f"/admin/presets/{preset_id}").text
    fake_slack.channel("C0SUPPORT1", "support")  # the bot was just invited
    assert "#support" not in sam.get(f"/admin/presets/{preset_id}").text  # cached
    before = len(fake_slack.calls_to("users.conversations"))
    clock.now += MIN_REFRESH_S
    response = sam.form(f"/admin/presets/{preset_id}/channels/refresh", {})
    assert response.status_code == 303 and response.headers["location"].endswith("#bindings")
    assert len(fake_slack.calls_to("users.conversations")) == before + 1
    page = sam.get(response.headers["location"]).text
    assert '<option value="C0SUPPORT1">#support (C0SUPPORT1)</option>' in page
    assert "fetched again from Slack" in page


def test_refresh_needs_the_csrf_token(as_user, preset_id: int) -> None:
    sam = as_user("sam")
    response = sam.post(f"/admin/presets/{preset_id}/channels/refresh", follow_redirects=False)
    assert response.status_code == 403


def seed_ranking(sessions, channel: str) -> int:
    with sessions.begin() as session:
        preset = store.Preset(name=f"p-{channel}", instruction="i")
        session.add(preset)
        session.flush()
        log = store.record_ranking(
            session,
            question=f"Question in {channel}",
            channel=channel,
            user="U1",
            preset=preset,
            instruction="i",
            collection="kb",
            answer="An answer",
            status="ok",
            error=None,
            rerank_status="ok",
            reranker="tiny",
            timings_ms={},
            candidates=[],
        )
        session.flush()
        return log.id


def test_rankings_show_names_beside_ids(sessions, as_user) -> None:
    known, unknown = seed_ranking(sessions, SALES), seed_ranking(sessions, "C0GONE0001")
    rita = as_user("rita")
    page = rita.get("/admin/rankings").text
    assert f"<td>#sales ({SALES})</td>" in page
    assert "<td>C0GONE0001</td>" in page
    datalist = re.search(r'<datalist id="channels">(.*?)</datalist>', page, re.S).group(1)
    assert f'<option value="{SALES}">#sales ({SALES})</option>' in datalist  # picking a name filters by id
    assert '<option value="C0GONE0001">C0GONE0001</option>' in datalist
    filtered = rita.get("/admin/rankings", params={"channel": SALES}).text
    assert f"Question in {SALES}" in filtered and "Question in C0GONE0001" not in filtered
    assert f"channel #sales ({SALES})" in rita.get(f"/admin/rankings/{known}").text
    assert "channel C0GONE0001 ·" in rita.get(f"/admin/rankings/{unknown}").text


def test_a_slack_error_leaves_the_admin_working_with_ids(fake_slack: FakeSlack, sessions, as_user, preset_id) -> None:
    fake_slack.errors["users.conversations"] = "missing_scope"
    sam = as_user("sam")
    page = sam.get(f"/admin/presets/{preset_id}").text
    assert 'name="channel_pick"' not in page and 'name="channel_id"' in page
    assert "Refresh the channel list" in page  # the fix (scopes) can be checked without a restart
    assert sam.form(f"/admin/presets/{preset_id}/bindings", {"channel_id": SALES}).status_code == 303
    assert f"<code>{SALES}</code>" in sam.get(f"/admin/presets/{preset_id}").text


def test_without_a_directory_the_form_takes_ids_only(sessions, preset_id: int) -> None:
    from admin import create_admin_app
    from bot.app.web import create_http_app
    from tests.admin.conftest import signed_in_clients

    app = create_http_app(None, create_admin_app(sessions, lambda: None, secret_key="test-secret"))
    with signed_in_clients(app) as sign_in:
        sam = sign_in("sam")
        page = sam.get(f"/admin/presets/{preset_id}").text
        assert 'name="channel_pick"' not in page and "Refresh the channel list" not in page
        assert sam.form(f"/admin/presets/{preset_id}/bindings", {"channel_id": SALES}).status_code == 303
        assert f"<code>{SALES}</code>" in sam.get(f"/admin/presets/{preset_id}").text
        assert sam.form(f"/admin/presets/{preset_id}/channels/refresh", {}).status_code == 404


@pytest.mark.parametrize("token", [None, "xoxb-test"])
def test_the_composition_root_wires_a_directory_only_with_a_bot_token(
    sessions, fake_slack: FakeSlack, token: str | None
) -> None:
    from types import SimpleNamespace

    from bot.app.web import build_admin
    from bot.settings import Settings
    from bot.slack.channels import ChannelDirectory

    settings = Settings(_env_file=None, slack_bot_token=token, slack_api_url=fake_slack.api_url)
    admin = build_admin(SimpleNamespace(settings=settings, sessions=sessions))
    channels = admin.state.channels
    if token is None:
        assert channels is None
    else:
        assert isinstance(channels, ChannelDirectory)
        assert channels.names()[SALES] == "sales"  # at SLACK_API_URL, with the bot token
        assert fake_slack.calls_to("users.conversations")[0].token == token


def test_the_support_channel_field_names_its_channel(sessions, as_user, preset_id: int) -> None:
    with sessions.begin() as session:
        session.get(store.Preset, preset_id).escalation_channel = LEGAL
    page = as_user("sam").get(f"/admin/presets/{preset_id}").text
    field = page.split('name="escalation_channel"')[1].split("</label>")[0]
    assert f"#legal-private ({LEGAL})" in field

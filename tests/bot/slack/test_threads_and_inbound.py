"""The pieces behind follow-ups, Slack Connect and files, on payload shapes the endpoint tests do not send."""

from __future__ import annotations

from bot.answering import Turn
from bot.slack.inbound import external_team, file_names, listed, unread_files_note
from bot.slack.threads import addressed_to_someone_else, turns_of


def test_turns_stop_before_the_follow_up_by_time_not_by_text_order() -> None:
    messages = [
        {"user": "U1", "text": "<@UBOT> first?", "ts": "1700000000.000009"},
        {"user": "UBOT", "bot_id": "BBOT", "text": "Answer one.", "ts": "1700000000.000010"},
        {"user": "U1", "text": "", "ts": "1700000000.000011"},  # a file without words
        {"user": "U1", "text": "edited", "subtype": "message_changed", "ts": "1700000000.000012"},
        {"bot_id": "B0OTHER", "text": "another bot", "ts": "1700000000.000013"},
        {"user": "U1", "text": "the follow-up", "ts": "1700000000.000100"},
        {"user": "U2", "text": "later", "ts": "1700000000.000200"},
    ]
    assert turns_of(messages, "1700000000.000100", "UBOT", "BBOT") == [
        Turn("user", "first?"),
        Turn("assistant", "Answer one."),
    ]
    # without knowing its own ids, ragbot's answers still are no user turns (they carry a bot_id)
    assert turns_of(messages, "1700000000.000100", None, None) == [Turn("user", "first?")]


def test_a_message_for_someone_else_is_no_follow_up() -> None:
    assert addressed_to_someone_else("<@U0BOB> can you check?", "UBOT")
    assert not addressed_to_someone_else("<@UBOT> and <@U0BOB>: how?", "UBOT")
    assert not addressed_to_someone_else("and how do I rotate it?", "UBOT")


def test_external_team_needs_a_shared_channel_and_another_team() -> None:
    shared = {"team_id": "T1", "is_ext_shared_channel": True}
    assert external_team(shared, {"user_team": "T2"}) == "T2"
    assert external_team(shared, {"source_team": "T2"}) == "T2"
    assert external_team(shared, {"user_team": "T1", "source_team": "T1"}) is None
    assert external_team({"team_id": "T1"}, {"user_team": "T2"}) is None  # not a Slack Connect channel
    assert external_team(shared, {}) is None


def test_file_names_are_listed_and_counted_past_ten() -> None:
    event = {"files": [{"name": "a.pdf"}, {"title": "b.png"}, {}, "junk"]}
    assert file_names(event) == ["a.pdf", "b.png", "an unnamed file"]
    assert file_names({"files": None}) == [] and file_names({}) == []
    assert listed(["a.pdf", "b.png"]) == "“a.pdf” and “b.png”"
    assert listed([f"{i}.txt" for i in range(12)]).endswith("“9.txt” and 2 more")
    assert "not read" in unread_files_note(["a.pdf"]) and "a.pdf" in unread_files_note(["a.pdf"])

"""The words and labels of delivery failures (bot/core/delivery_failures.py): pure, no I/O."""

from bot.core.delivery_failures import continues_in_thread, error_label, failure_notice


def test_a_notice_names_what_was_not_done_the_incident_and_slacks_answer():
    text = failure_notice("say", "is_archived", 7)
    assert text is not None
    assert text.startswith(":warning: Could not post a message in the incident channel for incident #7")
    assert "Slack answered `is_archived`" in text and "unarchive it" in text


def test_no_notice_for_posts_into_the_announce_channel_pages_or_other_services():
    for op in ("announce", "postmortem_link", "page", "silence", "pagerduty_ack", "frobnicate"):
        assert failure_notice(op, "channel_not_found", 1) is None


def test_error_text_is_escaped():
    text = failure_notice("post_card", "<!channel> & co", 1)
    assert text is not None and "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text
    assert "<!here>" not in continues_in_thread("<!here>")


def test_metric_labels_stay_bounded():
    assert error_label("is_archived") == "is_archived"
    assert error_label("http 404") == "http_404"
    assert error_label("network: ClientConnectorError") == "network"
    assert error_label("incident 12 has no channel") == "other"
    assert error_label("x" * 200) == "other"
    assert error_label(None) == "none"

"""Every way to reach a person beside the Slack DM: notifiers behind one small port (`port.py`).

A new vendor (an SMS provider, a push service) is one new module with a `Notifier` and one entry
in `registry.PROVIDERS`; the engine (bot/service/notifications.py) and the outbox operation
(`delivery.py`) never change for it.
"""

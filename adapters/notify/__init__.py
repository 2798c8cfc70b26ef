"""Notifications (DESIGN §2 三个一, §8): an outbox of notification events, delivered by channels.

- ``config``: recipients and channels, from the TOML file named by ``PINGJING_NOTIFICATIONS``
- ``messages``: what each triggering event says, and to whom
- ``channels``: structured log, signed webhook, e-mail over SMTP
- ``pending``: the outbox's read model of notifications, folded from their events
- ``delivery``: claims, sends and records each attempt of what is due
- ``outbox``: follows the log, requests notifications, delivers what is due
"""

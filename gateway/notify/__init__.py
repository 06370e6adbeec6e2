"""Notifications: the sinks that take the gateway's events to patients and systems.

- `payloads`: the JSON an event is delivered as (ids and categories only) and who hears it;
- `signing`: the Ed25519 signature headers of a webhook delivery;
- `urls`: which webhook URLs the gateway accepts;
- `contacts`: e-mail addresses, sealed with AES-256-GCM;
- `store`: events, endpoints, the delivery queue and dead letters in the database;
- `mail`: building and sending an e-mail (smtplib);
- `worker`: the `Notifier` sink and its background tasks (persist, deliver, expiry scan).
"""

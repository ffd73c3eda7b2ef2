"""The Slack adapter: a Bolt app whose thin listeners hand questions to the answer service on a bounded worker
pool. `app.py` wires the app and its middleware, `listeners.py` holds the handlers, `blocks.py` renders Block Kit,
`worker.py` is the pool, `http.py` the `/slack/events` transport (Socket Mode is Bolt's own adapter).
"""

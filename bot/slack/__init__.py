"""The Slack bot: a Bolt app whose thin listeners hand questions to `bot.pipeline` on a bounded worker pool.

Like slack-bolt's own layout: `app.py` wires the app and its middleware, `listeners.py` holds the handlers,
`blocks.py` renders Block Kit, `worker.py` is the pool; HTTP (`bot/server.py`) and Socket Mode are adapters.
"""

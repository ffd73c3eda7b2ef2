"""The Slack adapter: a Bolt app whose thin listeners turn questions into durable jobs that worker threads answer
through the answer service. `app.py` wires the app and its middleware, `listeners.py` holds the handlers,
`blocks.py` renders Block Kit, `worker.py` runs the jobs, `metrics.py` counts what happens, `http.py` is the
`/slack/events` transport (Socket Mode is Bolt's own adapter).
"""

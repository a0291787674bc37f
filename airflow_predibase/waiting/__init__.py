"""The waiting core: how a wait polls, backs off, times out and ends. No Airflow here.

- `waiter.Waiter` holds the rules: fed each poll's outcome, it says how long to sleep or
  how the wait ended (a `events.JobEvent`).
- `blocking.wait_blocking` is the worker-side loop (blocking mode).
- The trigger's `run()` (`triggers/base.py`) is the async loop over the same rules.

Deadlines are wall-clock epoch seconds, because they cross processes
(worker -> trigger table -> triggerer).
"""

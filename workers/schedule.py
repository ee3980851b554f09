"""The `rq cron` configuration (`lobbybot scheduler` loads it; run exactly one scheduler process).

`rq cron` has no lock and fires interval jobs again on every restart, so the only cron job is a small
dispatcher: it decides which sources are due from their saved state and enqueues one poll each with a
deterministic job id and `unique=True` (see `workers.jobs.enqueue_poll`). A second scheduler or a restart
therefore costs a few Redis reads, never a second poll.
"""

from rq import cron

from workers.jobs import dispatch_polls

DISPATCH_EVERY_SECONDS = 60

cron.register(dispatch_polls, queue_name="default", interval=DISPATCH_EVERY_SECONDS, result_ttl=0,
              job_timeout=30)

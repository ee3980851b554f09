"""The `rq cron` configuration (`lobbybot scheduler` loads it; run exactly one scheduler process).

`rq cron` has no lock and fires interval jobs again on every restart, so the cron jobs are two small
dispatchers. `dispatch_polls` decides which sources are due from their saved state and enqueues one poll each
with a deterministic job id and `unique=True` (see `workers.jobs.enqueue_poll`); `dispatch_digests` releases
digests and quiet-hour holds, moving them into delivery jobs atomically. A second scheduler or a restart
therefore costs a few Redis reads, never a second poll or a second digest.
"""

from rq import cron

from workers.jobs import dispatch_digests, dispatch_polls

DISPATCH_EVERY_SECONDS = 60

cron.register(dispatch_polls, queue_name="default", interval=DISPATCH_EVERY_SECONDS, result_ttl=0,
              job_timeout=30)
cron.register(dispatch_digests, queue_name="default", interval=DISPATCH_EVERY_SECONDS, result_ttl=0,
              job_timeout=30)

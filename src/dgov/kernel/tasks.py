"""Background tasks of the shared kernel (django-tasks; run by ``dgov worker``).

Enqueue with ``prune_outbox.enqueue(older_than_days=30)``; with the database backend the task
row commits with the caller's transaction and the worker picks it up on its next pass.
"""

from django_tasks import task

from dgov.kernel.services import events


@task()
def prune_outbox(older_than_days: int = 30) -> int:
    """Delete outbox events delivered more than ``older_than_days`` days ago; returns how many."""
    return events.prune_delivered(older_than_days=older_than_days)

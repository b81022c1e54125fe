"""Background tasks of entity resolution (django-tasks; run by ``dgov worker``)."""

from django_tasks import task


@task()
def run_linkage(run_id: int) -> str:
    """Execute a queued linkage run (see :func:`dgov.linkage.services.request_run`); returns its status."""
    from dgov.linkage import services
    from dgov.linkage.models import LinkageRun

    run = LinkageRun.objects.filter(pk=run_id).first()
    if run is None:
        return "missing"
    return services.execute_run(run).status

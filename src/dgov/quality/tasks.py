"""Background tasks of data quality (django-tasks; run by ``dgov worker``)."""

from django_tasks import task


@task()
def run_quality(run_id: int) -> str:
    """Execute a queued quality run (see :func:`dgov.quality.services.request_run`); returns its status."""
    from dgov.quality import services
    from dgov.quality.models import QualityRun

    run = QualityRun.objects.filter(pk=run_id).first()
    if run is None:
        return "missing"
    return services.execute_run(run).status

"""`dgov demo`: generate the deterministic synthetic demo province."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dgov.registry import demo


class Command(BaseCommand):
    """Seed the demo province: divisions, departments, officials, the libraries and records in every registry."""

    help = (
        "Generate the demo province (生成演示省份数据). Runs once per database; "
        "--if-missing makes a repeat only register missing demo OIDC clients."
    )

    def add_arguments(self, parser):
        parser.add_argument("--persons", type=int, default=100_000, help="number of persons (default 100000)")
        parser.add_argument("--enterprises", type=int, default=10_000, help="number of enterprises (default 10000)")
        parser.add_argument("--seed", type=int, default=20261128, help="random seed (same seed, same province)")
        parser.add_argument("--province", default=settings.DEMO_PROVINCE_CODE, help="GB/T 2260 province code")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="when the demo is already seeded, only register missing demo OIDC clients",
        )

    def handle(self, *args, **opts):
        if demo.is_seeded():
            if opts["if_missing"]:
                self.stdout.write("演示数据已存在 (demo province already seeded).")
                # Demo parts added after the database was seeded are filled in (idempotent).
                made = demo.ensure_demo_clients()
                if made:
                    self.stdout.write(f"演示接入应用已登记 (demo OIDC clients registered): {', '.join(made)}")
                self.seed_app_demos(opts)
                return
            raise CommandError("演示数据已存在 (the demo province is already seeded in this database).")
        if opts["persons"] < 1 or opts["enterprises"] < 0:
            raise CommandError("--persons must be at least 1 and --enterprises at least 0")
        columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, disable=not self.stdout.isatty()) as bar:
            tasks = {}

            def start_step(step, total):
                tasks[step] = bar.add_task(step, total=total)

            def progress(step, n):
                bar.advance(tasks[step], n)

            report = demo.generate(
                province_code=opts["province"],
                persons=opts["persons"],
                enterprises=opts["enterprises"],
                seed=opts["seed"],
                progress=progress,
                start_step=start_step,
            )
        self.stdout.write(
            f"演示省份已生成 (demo province generated): {report.divisions} divisions, "
            f"{report.organizations} departments, {report.officials} accounts, {report.oidc_clients} OIDC clients, "
            f"{report.registries} registries, "
            f"{report.households} households, {report.persons} persons, {report.enterprises} enterprises, "
            f"{sum(report.records.values())} records in all, in {report.seconds['total']} s {report.seconds}"
        )
        self.seed_app_demos(opts)

    def seed_app_demos(self, opts) -> None:
        """Let other apps add their demo data: every app config with a ``seed_demo`` method (idempotent)."""
        from django.apps import apps

        for config in apps.get_app_configs():
            hook = getattr(config, "seed_demo", None)
            if callable(hook):
                self.stdout.write(str(hook(province_code=opts["province"], seed=opts["seed"])))

"""`dgov quality`: data quality rules, runs and scores from the command line.

::

    dgov quality rules load rules.yaml [--dry-run] [--as USERNAME]   # all or nothing, every bad rule reported
    dgov quality rules list [--registry CODE]
    dgov quality rules enable|disable CODE [--as USERNAME]
    dgov quality types                                              # the built-in rule types
    dgov quality run [--registry CODE] [--samples N] [--as USERNAME]
    dgov quality scores [--department ORGCODE]
    dgov quality trends --backfill [--replace]                      # daily snapshots from the stored runs
    dgov quality trends [--department ORGCODE | --registry CODE] [--days N | --since DATE [--until DATE]]
    dgov quality orders list [--status active|all|open|…] [--department ORGCODE] [--registry CODE] [--overdue]
    dgov quality orders show CODE | recheck [CODE] [--note TEXT] | cancel CODE --reason TEXT [--as USERNAME]
    dgov quality orders escalate [--date YYYY-MM-DD]                # 督办 overdue orders now

Without ``--as`` the command acts as the system actor ``system:cli:<user>`` (operators with shell
access hold the platform: they may also load custom SQL rules); with ``--as`` it acts as that user,
whose rights the services check.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from dgov.kernel.management.subcommands import SubcommandCommand, progress_bar
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.quality import io as quality_io
from dgov.quality import services
from dgov.quality.models import QualityRule, QualityRun
from dgov.quality.rules import RULE_TYPES
from dgov.registry.models import Registry

STAGES = {"load": "读取记录 loading", "evaluate": "评估规则 evaluating", "save": "保存结果 saving"}


class Command(SubcommandCommand):
    """Data quality: rules (load, list, enable, disable), types, run, scores, trends."""

    help = "Data quality (数据质量): rules load|list|enable|disable, types, run, scores, trends."

    SUBCOMMANDS = {
        "rules": ("add_rules_arguments", "handle_rules", "quality rules: load, list, enable, disable (质量规则)"),
        "types": ("add_nothing", "handle_types", "list the built-in rule types (规则类型)"),
        "run": ("add_run_arguments", "handle_run", "evaluate the rules of registries (质量检查)"),
        "scores": ("add_scores_arguments", "handle_scores", "latest scores per registry or department (评分)"),
        "trends": ("add_trends_arguments", "handle_trends", "score trends; --backfill rebuilds them (质量趋势)"),
        "orders": ("add_orders_arguments", "handle_orders", "rectification work orders (整改工单) and escalation"),
    }

    # --- rules --------------------------------------------------------------------------------

    def add_rules_arguments(self, parser) -> None:
        """``rules load FILE`` / ``rules list`` / ``rules enable CODE`` / ``rules disable CODE``."""
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        load = actions.add_parser("load", help="load a YAML/JSON rule set, all or nothing (导入规则集)")
        load.add_argument("file", metavar="FILE", help="a .yaml/.yml or .json rule set (docs/quality.md)")
        load.add_argument("--dry-run", action="store_true", help="check only, write nothing (试运行)")
        load.add_argument("--json", action="store_true", help="print the report as JSON")
        self.add_identity_argument(load)
        listing = actions.add_parser("list", help="list rules (规则列表)")
        listing.add_argument("--registry", metavar="CODE", help="only this registry's rules")
        for name in ("enable", "disable"):
            sub = actions.add_parser(name, help=f"{name} a rule ({'启用' if name == 'enable' else '停用'})")
            sub.add_argument("code", metavar="CODE", help="rule code")
            self.add_identity_argument(sub)

    def handle_rules(self, **options):
        """Dispatch ``rules`` actions."""
        action = options["action"]
        if action == "load":
            return self.rules_load(options)
        if action == "list":
            return self.rules_list(options)
        return self.rules_toggle(options, enabled=action == "enable")

    def rules_load(self, options) -> None:
        """Load a rule set; exit status 1 (nothing written) when any rule is bad."""
        actor = self.acting_user(options)
        try:
            rules = quality_io.read_rule_file(options["file"])
        except quality_io.RuleSetError as exc:
            raise CommandError(f"规则集无法读取 (unreadable rule set): {exc}", returncode=1) from None
        try:
            report = services.load_rules(rules, actor=actor, source=options["file"], dry_run=options["dry_run"])
        except PermissionDenied as exc:
            raise CommandError(f"无权维护质量规则 (refused): {exc}", returncode=1) from None
        self.write_load_report(
            report, options, rejected=f"规则集有 {len(report.errors)} 条错误，未写入 (rule set rejected)"
        )

    def rules_list(self, options) -> None:
        """Print the rules (code, registry, type, fields, dimension, weight, owner, enabled)."""
        rules = QualityRule.objects.select_related("registry", "owner").order_by("registry__code", "code")
        if options.get("registry"):
            rules = rules.filter(registry__code=options["registry"])
        for rule in rules:
            state = "启用" if rule.enabled else "停用"
            self.stdout.write(
                f"{rule.code}\t{rule.registry.code}\t{rule.rule_type}\t{','.join(rule.fields)}\t"
                f"{rule.get_dimension_display()}\t{rule.weight}\t{rule.owner.code}\t{state}"
            )

    def rules_toggle(self, options, *, enabled: bool) -> None:
        """Enable or disable one rule."""
        actor = self.acting_user(options)
        rule = QualityRule.objects.select_related("registry", "owner").filter(code=options["code"]).first()
        if rule is None:
            raise CommandError(f"规则 {options['code']} 不存在 (no such rule)")
        try:
            services.set_rule_enabled(rule, enabled, actor=actor)
        except PermissionDenied as exc:
            raise CommandError(f"无权维护质量规则 (refused): {exc}", returncode=1) from None
        self.stdout.write(f"已{'启用' if enabled else '停用'}规则 {rule.code}")

    # --- types --------------------------------------------------------------------------------

    def handle_types(self, **options):
        """Print the built-in rule types: name, label, default dimension, fields, parameters."""
        for name, rule_type in RULE_TYPES.items():
            fields = (
                f"{rule_type.min_fields}"
                if rule_type.min_fields == rule_type.max_fields
                else f"{rule_type.min_fields}..{rule_type.max_fields if rule_type.max_fields is not None else 'n'}"
            )
            self.stdout.write(
                f"{name}\t{rule_type.label}\t{rule_type.dimension or '—'}\tfields={fields}\t"
                f"params={','.join(rule_type.params) or '—'}"
            )

    # --- run ----------------------------------------------------------------------------------

    def add_run_arguments(self, parser) -> None:
        """Arguments of ``dgov quality run``."""
        parser.add_argument("--registry", metavar="CODE", action="append", help="registry code (repeatable)")
        parser.add_argument("--samples", type=int, metavar="N", help="failing rows kept per rule (default 20)")
        self.add_identity_argument(parser)

    def handle_run(self, **options):
        """Run the rules of each registry (default: every registry with enabled rules) with a progress bar."""
        actor = self.acting_user(options)
        codes = options.get("registry") or []
        if codes:
            registries = []
            for code in codes:
                registry = Registry.objects.select_related("owner").filter(code=code).first()
                if registry is None:
                    raise CommandError(f"信息库 {code} 不存在 (no such registry)")
                registries.append(registry)
        else:
            ids = QualityRule.objects.filter(enabled=True).values("registry_id")
            registries = list(Registry.objects.filter(pk__in=ids).select_related("owner").order_by("code"))
            if not registries:
                raise CommandError("没有启用的质量规则 (no enabled rules)", returncode=1)
        failed = 0
        for registry in registries:
            run = self.run_one(registry, actor, options.get("samples"))
            if run is None or run.status != QualityRun.Status.SUCCEEDED:
                failed += 1
        if failed:
            raise CommandError(f"{failed} 个信息库检查失败 (runs failed)", returncode=1)

    def run_one(self, registry: Registry, actor, samples: int | None) -> QualityRun | None:
        """One registry's run with a rich progress bar (silent when not on a terminal); prints its outcome."""
        bar = progress_bar(self.stdout)
        task = bar.add_task(f"{registry.code}", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"{registry.code} {STAGES.get(stage, stage)}", completed=done, total=total)

        try:
            with bar:
                run = services.run_registry(registry, actor=actor, samples=samples, progress=progress)
        except PermissionDenied as exc:
            raise CommandError(f"无权发起质量检查 (refused): {exc}", returncode=1) from None
        except ValidationError as exc:
            self.stderr.write(f"{registry.code}: {'；'.join(exc.messages)}")
            return None
        if run.status == QualityRun.Status.SUCCEEDED:
            seconds = (run.finished_at - run.started_at).total_seconds()
            score = f"{run.score} {run.grade}" if run.score is not None else "—"
            self.stdout.write(
                f"{registry.code}: 第 {run.pk} 次检查完成 (run {run.pk} done) — {run.rows} 条记录, "
                f"{run.rule_count} 条规则, 得分 {score}, {seconds:.1f} s"
            )
            for result in run.results.order_by("rule_code"):
                rate = f"{result.pass_rate}%" if result.pass_rate is not None else "—"
                self.stdout.write(f"  {result.rule_code}\t{result.failed}/{result.checked}\t{rate}")
        else:
            self.stderr.write(f"{registry.code}: 第 {run.pk} 次检查失败 (run {run.pk} failed): {run.error}")
        return run

    # --- scores -------------------------------------------------------------------------------

    def add_scores_arguments(self, parser) -> None:
        """Arguments of ``dgov quality scores``."""
        parser.add_argument("--department", metavar="ORGCODE", help="one department's scorecard")
        self.add_identity_argument(parser)

    def handle_scores(self, **options):
        """Print the latest scores of registries and departments, or one department's scorecard."""
        actor = self.acting_user(options)
        if options.get("department"):
            department = Organization.objects.filter(code=options["department"]).first()
            if department is None:
                raise CommandError(f"部门 {options['department']} 不存在 (no such department)")
            try:
                card = services.department_scorecard(department, actor=actor)
            except PermissionDenied as exc:
                raise CommandError(str(exc), returncode=1) from None
            self.stdout.write(f"{department.code} {department.name}: {card.summary.score} {card.summary.grade}")
            for dimension, score in card.summary.dimensions.items():
                self.stdout.write(f"  {dimension}\t{score}")
            for result in card.results:
                self.stdout.write(f"  {result.run.registry.code}\t{result.rule_code}\t{result.pass_rate}")
            return
        for registry, run in services.registry_scores(actor):
            score = f"{run.score} {run.grade}" if run is not None and run.score is not None else "—"
            self.stdout.write(f"{registry.code}\t{score}")
        for department, summary in services.department_scores(actor):
            self.stdout.write(f"{department.code}\t{department.name}\t{summary.score} {summary.grade}")

    # --- trends -------------------------------------------------------------------------------

    def add_trends_arguments(self, parser) -> None:
        """Arguments of ``dgov quality trends``."""
        parser.add_argument("--backfill", action="store_true", help="rebuild daily snapshots from the stored runs")
        parser.add_argument("--replace", action="store_true", help="with --backfill: recompute existing snapshots too")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--department", metavar="ORGCODE", help="one department's trend")
        target.add_argument("--registry", metavar="CODE", help="one registry's trend")
        parser.add_argument("--days", type=int, metavar="N", help="period in days back from today (default 90)")
        parser.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="period start (instead of --days)")
        parser.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="period end (default today)")
        self.add_identity_argument(parser)

    def handle_trends(self, **options):
        """Backfill snapshots, print one trend, or rank departments by score with the change over the period."""
        from dgov.quality import trends

        actor = self.acting_user(options)
        try:
            if options["backfill"]:
                return self.trends_backfill(actor, options["replace"])
            if options.get("department") or options.get("registry"):
                scope = trends.DEPARTMENT if options.get("department") else trends.REGISTRY
                key = options.get("department") or options.get("registry")
                try:
                    found = trends.trend(
                        scope, key, actor=actor, days=options["days"], since=options["since"], until=options["until"]
                    )
                except (Organization.DoesNotExist, Registry.DoesNotExist):
                    raise CommandError(f"{key} 不存在 (not found)") from None
                return self.print_trend(found)
            since, until, rows = trends.ranking(trends.DEPARTMENT, actor=actor, days=options["days"])
        except PermissionDenied as exc:
            raise CommandError(f"无权查看 (refused): {exc}", returncode=1) from None
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages), returncode=2) from None
        self.stdout.write(f"{since} … {until}")
        for row in rows:
            change = row.comparison.change
            self.stdout.write(
                f"{row.code}\t{row.target.name}\t{row.summary.score if row.summary.score is not None else '—'} "
                f"{row.summary.grade}\t{f'{change:+.2f}' if change is not None else '—'}"
            )

    def trends_backfill(self, actor, replace: bool) -> None:
        """Rebuild snapshots from the stored runs, with a progress bar."""
        from dgov.quality import trends

        bar = progress_bar(self.stdout)
        task = bar.add_task("快照 snapshots", total=None)
        with bar:
            report = trends.backfill(
                actor=actor, replace=replace, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
        span = f"{report.first} … {report.last}" if report.first else "—"
        self.stdout.write(
            f"已回填 {report.days} 天 (days replayed) {span}: 写入 {report.written} 条 (written), "
            f"保留 {report.kept} 条 (kept)"
        )

    def print_trend(self, found) -> None:
        """One trend as text: the period, the comparison and one line per snapshot."""
        comparison = found.comparison
        change = f"{comparison.change:+.2f}" if comparison.change is not None else "—"
        self.stdout.write(
            f"{found.scope}:{found.key} {found.name} {found.since} … {found.until} 变化 (change) {change}"
        )
        rows = ([("期初 baseline", found.baseline)] if found.baseline else []) + [(str(p.day), p) for p in found.points]
        for label, point in rows:
            dimensions = " ".join(f"{key}={value}" for key, value in point.dimensions.items())
            self.stdout.write(
                f"{label}\t{point.score if point.score is not None else '—'} {point.grade}\t{dimensions}\t"
                f"工单 (orders) {point.open_orders}"
            )

    # --- orders (整改工单) ------------------------------------------------------------------------

    def add_orders_arguments(self, parser) -> None:
        """``orders list|show|escalate|recheck|cancel``."""
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        listing = actions.add_parser("list", help="list rectification orders (工单列表)")
        listing.add_argument("--status", default="active", help="active (default), all, open, submitted, resolved …")
        listing.add_argument("--department", metavar="ORGCODE", default="", help="the responsible department")
        listing.add_argument("--registry", metavar="CODE", default="", help="the registry")
        listing.add_argument("--overdue", action="store_true", help="only overdue orders (逾期)")
        self.add_identity_argument(listing)
        show = actions.add_parser("show", help="an order with its samples and timeline (工单详情)")
        show.add_argument("code", metavar="CODE", help="order code, e.g. ZG20261129-0001")
        self.add_identity_argument(show)
        escalate = actions.add_parser("escalate", help="escalate overdue orders now (督办)")
        escalate.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="judge as of this day (default today)")
        recheck = actions.add_parser("recheck", help="re-check one order now, or request the due re-check runs (复核)")
        recheck.add_argument("code", metavar="CODE", nargs="?", help="an order (default: the registries now due)")
        recheck.add_argument("--note", default="", help="a note for the order's timeline")
        self.add_identity_argument(recheck)
        cancel = actions.add_parser("cancel", help="cancel an order with a reason (撤销)")
        cancel.add_argument("code", metavar="CODE", help="order code")
        cancel.add_argument("--reason", required=True, help="why the order is cancelled")
        self.add_identity_argument(cancel)

    def handle_orders(self, **options):
        """Dispatch ``orders`` actions; refusals exit with status 1, bad input with status 2."""
        from dgov.quality import rectification

        action = options["action"]
        try:
            if action == "escalate":
                return self.orders_escalate(rectification, options)
            actor = self.acting_user(options)
            if action == "list":
                return self.orders_list(rectification, actor, options)
            if action == "recheck" and not options.get("code"):
                count = rectification.recheck_due()
                self.stdout.write(f"已请求 {count} 次复核检查 (re-check runs requested)")
                return None
            order = rectification.visible_orders(actor).filter(code=options["code"]).first()
            if order is None:
                raise CommandError(f"工单 {options['code']} 不存在 (no such order)")
            if action == "show":
                return self.orders_show(rectification, order, actor)
            if action == "recheck":
                run = rectification.request_recheck(order, actor=actor, note=options["note"])
                self.stdout.write(f"{order.code}: 已申请复核 (re-check requested){f', run {run.pk}' if run else ''}")
                return None
            rectification.cancel_order(order, actor=actor, reason=options["reason"])
            self.stdout.write(f"{order.code}: 已撤销 (cancelled)")
        except PermissionDenied as exc:
            raise CommandError(f"无权操作 (refused): {exc}", returncode=1) from None
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages), returncode=2) from None
        return None

    def orders_list(self, rectification, actor, options) -> None:
        """One line per order: code, status, escalation, department, registry, failed, due date and days."""
        orders = rectification.filter_orders(
            rectification.visible_orders(actor),
            status=options["status"],
            department=options["department"],
            registry=options["registry"],
            overdue=options["overdue"],
        ).order_by("due_on", "id")
        for order in orders:
            due = rectification.deadline(order)
            days = f"逾期 {due.overdue}" if due.is_overdue else f"剩余 {due.remaining}"
            self.stdout.write(
                f"{order.code}\t{order.status}\tL{order.escalation_level}\t{order.department.code}\t"
                f"{order.registry.code}\t{order.finding_key}\t{order.failed_now}\t{order.due_on}\t{days}"
            )

    def orders_show(self, rectification, order, actor) -> None:
        """An order's facts, masked samples and timeline."""
        due = rectification.deadline(order)
        self.stdout.write(f"{order.code} {order.title}")
        self.stdout.write(
            f"  状态 status: {order.status}  督办 level: {order.escalation_level}  来源 source: {order.source}"
        )
        self.stdout.write(f"  部门 department: {order.department.code} {order.department.name}")
        self.stdout.write(f"  信息库 registry: {order.registry.code}  问题 finding: {order.finding_key}")
        self.stdout.write(f"  不合格 failed: {order.failed_now} (发现时 at open {order.failed_at_open})")
        self.stdout.write(
            f"  期限 due: {order.due_on} ({order.deadline_days} 个工作日) "
            + (f"逾期 overdue {due.overdue}" if due.is_overdue else f"剩余 remaining {due.remaining}")
        )
        if order.response:
            self.stdout.write(f"  整改说明 answer: {order.response}")
        for sample in rectification.order_samples(order, actor):
            values = "；".join(f"{k}={v}" for k, v in (sample.get("values") or {}).items())
            self.stdout.write(f"  样例 sample {sample.get('uid', '')} {sample.get('division', '')} {values}")
        for event in order.events.all():
            self.stdout.write(f"  {event.at:%Y-%m-%d %H:%M} {event.action} {event.actor} {event.note}".rstrip())

    def orders_escalate(self, rectification, options) -> None:
        """Escalate the overdue orders as of today (or ``--date``)."""
        done = rectification.escalate_due(today=options.get("date"), actor=audit.cli_actor())
        for code, level in done:
            self.stdout.write(f"{code}\t督办 level {level}")
        self.stdout.write(f"已督办 {len(done)} 次 (escalations)")


def _date(text: str):
    """An ISO date argument."""
    import argparse
    import datetime

    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为 YYYY-MM-DD (a date): {text}") from None

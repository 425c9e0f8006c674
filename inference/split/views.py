"""Console pages of split inference: plans, approvals, nodes, links and the orchestrator's decisions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from inference.planner import PlanError
from inference.split.services import DEFAULT_LINK_MBPS, DEFAULT_LINK_RTT_MS, link_figures, split_plan_approve
from inference.split_models import LinkMeasurement, NodeLink, OrchestratorDecision, SplitNode, SplitPlan

PLANS_SHOWN = 50
DECISIONS_SHOWN = 30
APPROVE_PERMISSION = "inference.change_splitplan"


def _with_trust(plans: list[SplitPlan], nodes: dict[str, SplitNode]) -> list[SplitPlan]:
    for plan in plans:
        plan.rows = [
            {
                **part,
                "last_layer": part["end"] - 1,
                "trusted": bool(nodes.get(part["node"]) and nodes[part["node"]].is_trusted),
            }
            for part in plan.partitions or []
        ]
    return plans


def _with_served_variants(plans: list[SplitPlan]) -> list[SplitPlan]:
    """Name on each active plan the enabled variants that serve their requests through it."""
    from variants.models import Variant

    served: dict[int, list[str]] = {}
    for variant in Variant.objects.filter(serving=Variant.Serving.SPLIT, enabled=True).order_by("name"):
        served.setdefault(variant.ai_model_id, []).append(variant.name)
    for plan in plans:
        active = plan.state == SplitPlan.State.ACTIVE
        plan.served_variants = served.get(plan.ai_model_id, []) if active else []
    return plans


def _link_rows(nodes: list[SplitNode]) -> list[dict]:
    """Return the pairs with a configured figure or any measurement, as the planner sees them."""
    now = timezone.now()
    probes: dict[frozenset, list[LinkMeasurement]] = {}
    for probe in LinkMeasurement.objects.select_related("source", "target"):
        probe.fresh = probe.is_fresh(now)
        probes.setdefault(frozenset((probe.source.name, probe.target.name)), []).append(probe)
    configured = {
        frozenset((link.a.name, link.b.name)): link for link in NodeLink.objects.select_related("a", "b")
    }
    rows = []
    for figures in link_figures(nodes, now=now):
        pair = frozenset((figures.a, figures.b))
        if figures.source == "default" and pair not in probes:
            continue
        rows.append({"figures": figures, "probes": probes.get(pair, []), "configured": configured.get(pair)})
    return rows


@staff_member_required
def split_overview(request: HttpRequest) -> HttpResponse:
    """List split plans (pending ones first, with approve buttons), nodes and recent decisions."""
    nodes = {node.name: node for node in SplitNode.objects.select_related("environment")}
    rows = SplitPlan.objects.select_related("ai_model", "approved_by").order_by("-created_at")
    plans = _with_served_variants(_with_trust(list(rows[:PLANS_SHOWN]), nodes))
    pending = _with_trust(list(rows.filter(state=SplitPlan.State.AWAITING_APPROVAL)), nodes)
    decisions = OrchestratorDecision.objects.select_related("ai_model", "plan_from", "plan_to")
    context = {
        "plans": plans,
        "pending": pending,
        "nodes": list(nodes.values()),
        "decisions": decisions[:DECISIONS_SHOWN],
        "links": _link_rows(list(nodes.values())),
        "default_link": {"bandwidth_mbps": DEFAULT_LINK_MBPS, "rtt_ms": DEFAULT_LINK_RTT_MS},
        "probe_interval_s": settings.SPLIT_LINK_PROBE_INTERVAL_S,
        "can_approve": request.user.has_perm(APPROVE_PERMISSION),
    }
    return render(request, "console/split.html", context)


@require_POST
@staff_member_required
@permission_required(APPROVE_PERMISSION, raise_exception=True)
def split_plan_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve a pending plan; its broadcast runs on the control queue."""
    plan = get_object_or_404(SplitPlan.objects.select_related("ai_model"), pk=pk)
    try:
        split_plan_approve(plan=plan, user=request.user)
    except PlanError as exc:
        messages.error(request, f"Plan v{plan.version} of {plan.ai_model} not approved: {exc}")
    else:
        messages.success(request, f"Plan v{plan.version} of {plan.ai_model} approved; broadcasting now.")
    return redirect("console:split")

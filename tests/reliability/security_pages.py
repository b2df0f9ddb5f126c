"""The console's pages as a table: for every route the resolver serves outside /api/, the least role that
may GET it and POST to it, and what that role gets. The permission matrix and the CSRF test both walk it,
and both fail on a route the table does not name, so a new page has to say who may use it.

Roles are the API world's (tests/api/world.py): anonymous, none (logged in, no role), viewer, reviewer,
operator, admin (a superuser with staff status). Two pseudo-roles: "public" (anyone, logged in or not) and
"staff" (the Django admin: only admin; everyone else is sent to the admin's own login page).
"""

from dataclasses import dataclass

from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.experiments.exports.models import ExportJob
from apps.experiments.models import Experiment
from apps.llm.models import LLMEndpoint
from apps.reviews.models import ReviewAssignment, ReviewDraft, ReviewTask, ReviewVerdict
from apps.training.models import MergeJob, TrainingJob

RANK = {"anonymous": -1, "none": 0, "viewer": 1, "reviewer": 2, "operator": 3, "admin": 4, "staff": 4}
NOT_SERVED = None  # the view answers 405 to a logged-in user for this method


@dataclass(frozen=True)
class Page:
    route: str  # as the resolver spells it
    path: str  # with {key} for the world's ids
    get: str | None  # least role that may GET ("public", "staff", a role, or NOT_SERVED)
    post: str | None  # least role that may POST
    get_status: int = 200  # what a role that may gets
    post_status: int = 302
    body: dict | None = None  # the POST's form data (empty by default: a validation answer at most)

    @property
    def id(self) -> str:
        return self.route or "/"


def seen(route: str, path: str, status: int = 200) -> Page:
    """A page for viewers and up; its view ignores the method, so a POST gets the page too (and changes nothing)."""
    return Page(route, path, "viewer", "viewer", status, status)


def act(route: str, path: str, role: str) -> Page:
    """An action: POST only (405 to a GET), for `role` and up, answered by a redirect."""
    return Page(route, path, NOT_SERVED, role)


EXP = "experiments/<int:pk>"
REVIEW = "review/<slug:kind>"
PAGES = [
    seen("", "/"),
    # experiments (console)
    seen("experiments/", "/experiments/"),
    Page("experiments/new/", "/experiments/new/", "operator", "operator", post_status=200),
    seen(f"{EXP}/", "/experiments/{experiment}/"),
    seen(f"{EXP}/live/", "/experiments/{experiment}/live/"),
    # A finished stage or job answers htmx's "stop polling" (286).
    seen(f"{EXP}/stages/<int:stage_pk>/", "/experiments/{experiment}/stages/{stage}/", 286),
    seen(f"{EXP}/training/<int:job_pk>/", "/experiments/{experiment}/training/{job}/", 286),
    seen(f"{EXP}/training/<int:job_pk>/curves.json", "/experiments/{experiment}/training/{job}/curves.json"),
    seen(f"{EXP}/evaluations.json", "/experiments/{experiment}/evaluations.json"),
    Page(f"{EXP}/start/", "/experiments/{draft}/start/", "operator", "operator"),
    Page(f"{EXP}/pause/", "/experiments/{experiment}/pause/", "operator", "operator"),
    Page(f"{EXP}/resume/", "/experiments/{paused}/resume/", "operator", "operator"),
    Page(f"{EXP}/cancel/", "/experiments/{draft}/cancel/", "operator", "operator"),
    Page(f"{EXP}/approve/", "/experiments/{waiting}/approve/", "operator", "operator"),
    seen(f"{EXP}/costs/", "/experiments/{experiment}/costs/"),
    seen("experiments/instructions/<int:pk>/provenance/", "/experiments/instructions/{instruction}/provenance/"),
    seen("experiments/exports/", "/experiments/exports/"),
    seen("experiments/exports/<int:pk>/", "/experiments/exports/{export}/"),
    seen("experiments/exports/<int:pk>/files/<str:name>", "/experiments/exports/{export}/files/{export_file}"),
    # datasets
    seen("datasets/", "/datasets/"),
    seen("datasets/<int:pk>/", "/datasets/{dataset}/"),
    seen("datasets/<int:pk>/instructions/<int:instruction_pk>/", "/datasets/{dataset}/instructions/{instruction}/"),
    Page("datasets/import/", "/datasets/import/", "operator", "operator", post_status=200),
    seen("datasets/imports/<int:pk>/", "/datasets/imports/{import}/"),
    # the gateway
    seen("llm/endpoints/", "/llm/endpoints/"),
    Page("llm/endpoints/new/", "/llm/endpoints/new/", "operator", "operator", post_status=200),
    seen("llm/endpoints/<int:pk>/", "/llm/endpoints/{endpoint}/"),
    Page("llm/endpoints/<int:pk>/edit/", "/llm/endpoints/{endpoint}/edit/", "operator", "operator", post_status=200),
    act("llm/endpoints/<int:pk>/test/", "/llm/endpoints/{endpoint}/test/", "operator"),
    seen("llm/classifier/", "/llm/classifier/"),
    act("llm/classifier/retrain/", "/llm/classifier/retrain/", "operator"),
    seen("llm/prompts/", "/llm/prompts/"),
    seen("llm/prompts/<slug:template_id>/v<int:version>/", "/llm/prompts/judge_pairwise/v1/"),
    seen("llm/costs/", "/llm/costs/"),
    # training
    seen("training/artifacts/", "/training/artifacts/"),
    seen("training/artifacts/<int:pk>/download/", "/training/artifacts/{adapter}/download/"),
    act("training/artifacts/<int:pk>/merge/", "/training/artifacts/{adapter}/merge/", "operator"),
    seen("training/jobs/", "/training/jobs/"),
    seen("training/jobs/<int:pk>/", "/training/jobs/{job}/"),
    act("training/jobs/<int:pk>/cancel/", "/training/jobs/{job}/cancel/", "operator"),
    # review queues
    seen("review/", "/review/"),
    seen(f"{REVIEW}/", "/review/verdict/"),
    seen(f"{REVIEW}/table/", "/review/verdict/table/"),
    act(f"{REVIEW}/bulk/", "/review/verdict/bulk/", "reviewer"),
    seen(f"{REVIEW}/<int:pk>/", "/review/verdict/{task}/"),
    act(f"{REVIEW}/<int:pk>/decide/", "/review/verdict/{task}/decide/", "reviewer"),
    act(f"{REVIEW}/<int:pk>/resolve/", "/review/verdict/{conflict_task}/resolve/", "operator"),
    act(f"{REVIEW}/<int:pk>/skip/", "/review/verdict/{task}/skip/", "reviewer"),
    act(f"{REVIEW}/<int:pk>/release/", "/review/verdict/{task}/release/", "reviewer"),
    act(f"{REVIEW}/<int:pk>/draft/", "/review/verdict/{task}/draft/", "reviewer"),
    act(f"{REVIEW}/<int:pk>/draft/discard/", "/review/verdict/{task}/draft/discard/", "reviewer"),
    # Django's authentication pages
    Page("accounts/login/", "/accounts/login/", "public", "public", post_status=200),
    act("accounts/logout/", "/accounts/logout/", "public"),
    Page("accounts/password_change/", "/accounts/password_change/", "none", "none", post_status=200),
    Page("accounts/password_change/done/", "/accounts/password_change/done/", "none", NOT_SERVED),
    Page("accounts/password_reset/", "/accounts/password_reset/", "public", "public", post_status=200),
    # Public pages that only show a message: a POST is 405 for everyone, logged in or not.
    Page("accounts/password_reset/done/", "/accounts/password_reset/done/", "public", "public", post_status=405),
    Page("accounts/reset/<uidb64>/<token>/", "/accounts/reset/MQ/bad-token/", "public", "public", 200, 200),
    Page("accounts/reset/done/", "/accounts/reset/done/", "public", "public", post_status=405),
    # the API's schema and docs are pages of their own (DRF views outside /api/v1/): see tests/api/test_roles.py
]


def served_routes(resolver=None, prefix=""):
    """Every route outside /api/ as the resolver spells it."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from served_routes(entry, route)
        elif isinstance(entry, URLPattern) and not route.startswith("api/"):
            yield route


def admin_routes() -> list[str]:
    return sorted(r for r in set(served_routes()) if r.startswith("admin/"))


def admin_path(route: str) -> str:
    """A concrete URL for one of the Django admin's routes (object id 1: present for most models, absent for some)."""
    path = route.replace("<path:content_type_id>/<path:object_id>", "1/1").replace("<path:object_id>", "1")
    path = path.replace("<id>", "1")
    path = path.replace("^(?P<app_label>auth|authtoken|datasets|llm|experiments|judging|reviews|training)/$", "llm/")
    return "/" + path.replace("(?P<url>.*)$", "no-such-page/")


def clients(world) -> dict[str, Client]:
    """A browser session per role (CSRF checks off, as Django's test client has them); a crash is a 500."""
    made = {"anonymous": Client(raise_request_exception=False)}
    for role, user in world.users.items():
        made[role] = Client(raise_request_exception=False)
        made[role].force_login(user)
    return made


def rolled_back(send):
    """Run one request inside a savepoint that is rolled back, so each cell sees the same world."""
    with transaction.atomic():
        response = send()
        transaction.set_rollback(True)
    return response


def state() -> dict:
    """What a refused request must leave as it was."""
    models = (
        Experiment,
        TrainingJob,
        MergeJob,
        ReviewVerdict,
        ReviewAssignment,
        ReviewDraft,
        ExportJob,
        ImportJob,
        LLMEndpoint,
        Dataset,
        Instruction,
    )
    counts = {model.__name__: model.objects.count() for model in models}
    counts["statuses"] = sorted(Experiment.objects.values_list("pk", "status"))
    counts["tasks"] = sorted(ReviewTask.objects.values_list("pk", "status"))
    counts["assignments"] = sorted(ReviewAssignment.objects.values_list("pk", "status"))
    counts["endpoints"] = sorted(LLMEndpoint.objects.values_list("pk", "max_concurrency", "name", "base_url"))
    counts["cancels"] = sorted(TrainingJob.objects.values_list("pk", "cancel_requested"))
    return counts

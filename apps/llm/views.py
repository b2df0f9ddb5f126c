"""Pages for endpoints, prompt templates and costs. Viewers see everything; operators change endpoints
and press "test connection"."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.decorators import role_required
from apps.core.errors import RetortError
from apps.core.roles import Role
from apps.llm import classifier_data, selectors
from apps.llm.forms import EndpointForm
from apps.llm.models import LLMEndpoint
from apps.llm.services import llm_endpoint_create, llm_endpoint_test, llm_endpoint_update
from apps.llm.terms import endpoint_terms
from workers.llm import keys
from workers.llm.prompts import TemplateError, all_templates, get_template, latest_templates


@role_required(Role.VIEWER)
def endpoint_list(request):
    return render(request, "llm/endpoint_list.html", {"endpoints": selectors.endpoint_list()})


@role_required(Role.VIEWER)
def endpoint_detail(request, pk: int):
    endpoint = get_object_or_404(selectors.endpoint_list(), pk=pk)
    return render(
        request,
        "llm/endpoint_detail.html",
        {
            "endpoint": endpoint,
            "usage": selectors.endpoint_usage(endpoint_id=endpoint.pk),
            "key_is_set": selectors.endpoint_key_is_set(endpoint),
            "key_refusal": keys.refusal(endpoint.api_key_env) if endpoint.api_key_env else "",
            "terms": endpoint_terms(endpoint),
            "classifier": (
                selectors.classifier_versions() if endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER else None
            ),
        },
    )


def _classifier_partial(request, **extra):
    back = request.htmx.current_url_abs_path if request.htmx else None
    context = {"classifier": selectors.classifier_versions(), "back_url": back or "", **extra}
    return render(request, "llm/_classifier_versions.html", context)


@role_required(Role.VIEWER)
def classifier_versions(request):
    """The classifier's retrainings as a partial (polled by the partial itself while one is pending)."""
    return _classifier_partial(request)


@require_POST
@role_required(Role.OPERATOR)
def classifier_retrain(request):
    """Queue a retraining of the local task classifier (one at a time); back to where the button was."""
    version, queued = classifier_data.classifier_retrain(by=request.user)
    if queued:
        message = f"Retraining of the local task classifier queued (version {version.pk})."
    else:
        message = "A retraining of the local task classifier is already queued; it will learn from every label."
    if request.htmx:
        return _classifier_partial(request, retrain_message=message)
    messages.success(request, message)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("llm:endpoints")
    return redirect(back)


def _save_endpoint(request, form: EndpointForm, endpoint: LLMEndpoint | None):
    if not form.is_valid():
        return None
    fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
    try:
        if endpoint is None:
            return llm_endpoint_create(by=request.user, **fields)
        return llm_endpoint_update(endpoint=endpoint, by=request.user, **fields)
    except RetortError as exc:
        form.add_error(exc.details.get("field"), str(exc))
    except ValidationError as exc:
        form.add_error(None, exc)
    return None


@role_required(Role.OPERATOR)
def endpoint_create(request):
    form = EndpointForm(request.POST or None, user=request.user)
    if request.method == "POST" and (endpoint := _save_endpoint(request, form, None)):
        messages.success(request, f"Endpoint {endpoint.name} created.")
        return redirect("llm:endpoint", pk=endpoint.pk)
    return render(request, "llm/endpoint_form.html", {"form": form, "endpoint": None})


@role_required(Role.OPERATOR)
def endpoint_edit(request, pk: int):
    endpoint = get_object_or_404(LLMEndpoint, pk=pk)
    form = EndpointForm(request.POST or None, instance=endpoint, user=request.user)
    if request.method == "POST" and (saved := _save_endpoint(request, form, endpoint)):
        messages.success(request, f"Endpoint {saved.name} saved.")
        return redirect("llm:endpoint", pk=saved.pk)
    return render(request, "llm/endpoint_form.html", {"form": form, "endpoint": endpoint})


@require_POST
@role_required(Role.OPERATOR)
def endpoint_test(request, pk: int):
    endpoint = get_object_or_404(LLMEndpoint, pk=pk)
    check = llm_endpoint_test(endpoint=endpoint)
    if request.htmx:
        return render(request, "llm/endpoint_detail.html#test-result", {"check": check, "endpoint": endpoint})
    (messages.success if check.ok else messages.error)(request, check.message)
    return redirect("llm:endpoint", pk=endpoint.pk)


@role_required(Role.VIEWER)
def prompt_list(request):
    versions: dict[str, list[int]] = {}
    for template_id, version in sorted(all_templates()):
        versions.setdefault(template_id, []).append(version)
    rows = [(template, versions[template.id]) for template in latest_templates()]
    return render(request, "llm/prompt_list.html", {"rows": rows})


@role_required(Role.VIEWER)
def prompt_detail(request, template_id: str, version: int):
    try:
        template = get_template(template_id, version)
    except TemplateError:
        raise Http404("No such prompt template") from None
    return render(request, "llm/prompt_detail.html", {"template": template})


@role_required(Role.VIEWER)
def cost_overview(request):
    return render(
        request,
        "llm/cost_overview.html",
        {"ledger": selectors.ledger_totals(), "rows": selectors.cost_rollup_experiments()},
    )

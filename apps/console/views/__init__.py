from django.shortcuts import render

from apps.core.decorators import role_required
from apps.core.roles import Role
from apps.datasets.selectors import dataset_list, import_job_recent


@role_required(Role.VIEWER)
def home(request):
    context = {"datasets": dataset_list()[:10], "imports": import_job_recent(limit=5)}
    return render(request, "console/home.html", context)

"""The home page: datasets and recent imports, including the demo import that `make run` performs."""

import re

import pytest
from django.urls import reverse

from apps.core.roles import Role
from apps.datasets.demo import DEMO_DATASETS, demo_datasets_load
from apps.datasets.models import ImportJob

pytestmark = pytest.mark.django_db


def _recent_imports(html: str) -> str:
    return re.search(r"<h2>Recent imports</h2>(.*?)</section>", html, flags=re.S).group(1)


def test_home_is_the_landing_page_of_the_console_app(client_for):
    assert reverse("home") == "/"
    response = client_for(Role.VIEWER).get("/")
    assert response.status_code == 200
    assert response.templates[0].name == "console/home.html"
    assert "None yet." in _recent_imports(response.content.decode())


def test_the_demo_import_shows_under_recent_imports(client_for):
    reports = demo_datasets_load()
    jobs = list(ImportJob.objects.order_by("pk"))
    assert [j.dataset_name for j in jobs] == [d.name for d in DEMO_DATASETS]
    assert all(j.status == ImportJob.Status.SUCCEEDED and j.dataset_id for j in jobs)
    assert [j.imported for j in jobs] == [r.imported for r in reports] and all(r.imported > 0 for r in reports)

    section = _recent_imports(client_for(Role.VIEWER).get("/").content.decode())
    assert "None yet." not in section
    for job in jobs[-5:]:  # the page lists the five most recent imports
        assert job.dataset_name in section and reverse("datasets:import-job", args=[job.pk]) in section
    assert reverse("datasets:import-job", args=[jobs[-6].pk]) not in section

    demo_datasets_load()  # a second call imports nothing and records nothing
    assert ImportJob.objects.count() == len(DEMO_DATASETS)
